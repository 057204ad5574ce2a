"""`videostyle run`: every step on a local file, handing off through a local folder.

The same step functions and the same mpirun launch as in Airflow; only the stores differ.
"""

import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from videostyle.commands import process_env, step_argv
from videostyle.errors import BadInputError, VideostyleError
from videostyle.settings import Settings
from videostyle.steps.preprocess import preprocess
from videostyle.steps.publish import publish
from videostyle.steps.stitch import stitch
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
) -> dict[str, Any]:
    """Style `source` into `output` with `model` and its `options`; returns the run's report.

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
        preprocess(
            stores,
            settings,
            video=source.name,
            job_id=job_id,
            model=model,
            options=options,
            crf=crf,
            ranks=ranks,
        )
        env = process_env({f"VIDEOSTYLE_{key.upper()}": value for key, value in urls.items()})
        scored = subprocess.run(
            step_argv("score", ["--job", job_id], ranks=ranks), env=env, check=False
        )
        if scored.returncode != 0:
            raise VideostyleError(f"scoring exited {scored.returncode}")
        stitch(stores, settings, job_id=job_id)
        names = publish(stores, settings, job_id=job_id)
        output.parent.mkdir(parents=True, exist_ok=True)
        stores.outputs.download(names["output"], output)
        report: dict[str, Any] = json.loads(stores.outputs.read_bytes(names["report"]))
    return report
