"""`videostyle run`: every step of the steps table on a local file, handing off through a local
folder.

The same step functions and the same mpirun launch as in Airflow; only the stores differ.
"""

import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from videostyle.cli import build_parser, run_step
from videostyle.commands import process_env, step_argv
from videostyle.errors import BadInputError, VideostyleError
from videostyle.settings import Settings
from videostyle.steps.table import STEPS, step_args
from videostyle.storage import Stores


def local_style_image(options: Mapping[str, Any], styles: Path) -> dict[str, Any]:
    """`run` takes the `style_image` option as a local file: copied into the run's styles
    folder, the job names it there, as a job in Airflow names a blob in the styles container."""
    path = options.get("style_image")
    if not isinstance(path, str) or not path:
        return dict(options)  # none: the model says whether it needs one
    file = Path(path)
    if not file.is_file():
        raise BadInputError(f"style image {path} does not exist or is not a file")
    styles.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(file, styles / file.name)
    return {**options, "style_image": file.name}


def run_local(
    source: Path,
    output: Path,
    *,
    model: str,
    options: Mapping[str, Any],
    crf: int,
    ranks: int,
    settings: Settings,
    temporal: bool = False,
) -> dict[str, Any]:
    """Style `source` into `output` with `model` and its `options` (in the temporal mode if
    `temporal`); returns the run's report.

    A `style_image` option is a local file here (local_style_image)."""
    if not source.is_file():
        raise BadInputError(f"{source} is not a file")
    settings.scratch_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="run-", dir=settings.scratch_dir) as tmp:
        # Each run its own job and folders: runs started together never read each other's work.
        job_id = Path(tmp).name
        urls = {
            "inputs_url": str(source.resolve().parent),
            "work_url": f"{tmp}/work",
            "outputs_url": f"{tmp}/outputs",
            "styles_url": f"{tmp}/styles",
            "scratch_dir": f"{tmp}/scratch",
        }
        options = local_style_image(options, Path(urls["styles_url"]))
        settings = settings.model_copy(update={**urls, "scratch_dir": Path(urls["scratch_dir"])})
        stores = Stores(settings)
        env = process_env({f"VIDEOSTYLE_{key.upper()}": value for key, value in urls.items()})
        for step in STEPS.values():
            args = step_args(
                step,
                job=job_id,
                video=source.name,
                model=model,
                options=json.dumps(options),
                crf=str(crf),
                ranks=str(ranks),
                temporal="true" if temporal else "",
            )
            # Above one rank under mpirun; one rank runs here like the other steps (its process
            # would only import torch again).
            if step.mpi and ranks > 1:
                done = subprocess.run(step_argv(step.name, args, ranks=ranks), env=env, check=False)
                if done.returncode != 0:
                    raise VideostyleError(f"{step.name} exited {done.returncode}")
                continue
            result = run_step(build_parser().parse_args([step.name, *args]), settings)
            if step.result_line:
                published = result  # the blobs publish put in the outputs
        output.parent.mkdir(parents=True, exist_ok=True)
        stores.outputs.download(published["output"], output)
        report: dict[str, Any] = json.loads(stores.outputs.read_bytes(published["report"]))
    return report
