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

from videostyle.errors import BadInputError, VideostyleError
from videostyle.launch import step_argv, step_env
from videostyle.settings import Settings
from videostyle.steps.preprocess import preprocess
from videostyle.steps.publish import publish
from videostyle.steps.stitch import stitch
from videostyle.storage import Stores

JOB_ID = "local"


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
    """Style `source` into `output` with `model` and its `options`; returns the run's report."""
    if not source.is_file():
        raise BadInputError(f"{source} is not a file")
    with tempfile.TemporaryDirectory(prefix="videostyle-run-") as tmp:
        urls = {
            "inputs_url": str(source.resolve().parent),
            "work_url": f"{tmp}/work",
            "outputs_url": f"{tmp}/outputs",
        }
        settings = settings.model_copy(update=urls)
        stores = Stores(settings)
        preprocess(
            stores,
            settings,
            video=source.name,
            job_id=JOB_ID,
            model=model,
            options=options,
            crf=crf,
            ranks=ranks,
        )
        env = step_env({f"VIDEOSTYLE_{key.upper()}": value for key, value in urls.items()})
        scored = subprocess.run(
            step_argv("score", ["--job", JOB_ID], ranks=ranks), env=env, check=False
        )
        if scored.returncode != 0:
            raise VideostyleError(f"scoring exited {scored.returncode}")
        stitch(stores, settings, job_id=JOB_ID)
        names = publish(stores, settings, job_id=JOB_ID)
        output.parent.mkdir(parents=True, exist_ok=True)
        stores.outputs.download(names["output"], output)
        report: dict[str, Any] = json.loads(stores.outputs.read_bytes(names["report"]))
    shutil.rmtree(settings.scratch_dir / JOB_ID, ignore_errors=True)
    return report
