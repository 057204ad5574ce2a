"""Local scratch space of one step's process, never shared and always removed."""

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from videostyle.settings import Settings


@contextlib.contextmanager
def scratch_folder(settings: Settings, job_id: str, step: str) -> Iterator[Path]:
    """A new folder under the scratch dir for `step` of `job_id`, removed afterwards.

    New for every call: two processes never share one, not even two runs or tries of one job.
    """
    settings.scratch_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{job_id}-{step}-", dir=settings.scratch_dir))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
