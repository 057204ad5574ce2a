"""Score: each MPI rank styles its share of the units and uploads each one as it finishes.

A unit whose output already exists is skipped, so a rerun after a failure redoes only lost work.
"""

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Protocol

import torch

from videostyle.defaults import BUILTIN_MODEL
from videostyle.media.frames import FrameEncoder, read_frames
from videostyle.models.stylizer import Stylizer, load_stylizer
from videostyle.plan import Plan, Unit, load_plan
from videostyle.settings import Settings
from videostyle.split import rank_units
from videostyle.storage import BlobStore, Stores
from videostyle.timings import record, timed

log = logging.getLogger(__name__)


class Communicator(Protocol):
    """The part of an mpi4py communicator scoring uses."""

    def Get_rank(self) -> int: ...  # noqa: N802 (mpi4py's names)
    def Get_size(self) -> int: ...  # noqa: N802
    def gather(self, sendobj: Any, root: int = 0) -> list[Any] | None: ...


def pick_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def score(
    stores: Stores, settings: Settings, *, job_id: str, comm: Communicator, local_ranks: int = 1
) -> None:
    rank, size = comm.Get_rank(), comm.Get_size()
    plan = load_plan(stores.work, job_id)
    mine = [plan.units[i] for i in rank_units(len(plan.units), rank, size)]
    todo = [u for u in mine if not stores.work.exists(plan.unit_name(u))]
    log.info("rank %d/%d: %d units, %d already done", rank, size, len(mine), len(mine) - len(todo))
    threads = max(1, (os.cpu_count() or 1) // local_ranks)
    torch.set_num_threads(threads)  # ranks on one machine share its cores
    scratch = settings.scratch_dir / job_id / f"score-rank{rank}"
    with timed() as took:
        try:
            if todo:
                source = stores.work.download(
                    plan.source_name, scratch / f"source{plan.source_ext}"
                )
                stylizer = load_stylizer(
                    _local_model(plan.model, scratch, settings),
                    plan.style,
                    plan.strength,
                    pick_device(settings.device),
                    precision=settings.precision,
                )
                for unit in todo:
                    _score_unit(
                        plan, unit, source, stylizer, stores.work, scratch, settings, threads
                    )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    ranks = comm.gather(
        {
            "rank": rank,
            "scored": len(todo),
            "skipped": len(mine) - len(todo),
            "frames": sum(u.frame_count for u in todo),
            **took,
        }
    )
    if ranks is not None:
        record(
            stores.work,
            plan,
            "score",
            {
                "seconds": max(r["seconds"] for r in ranks),
                "ranks": ranks,
                "device": str(pick_device(settings.device)),
                "precision": settings.precision,
            },
        )


def _local_model(model: str, scratch: Path, settings: Settings) -> str:
    """The built-in name or a local checkpoint path; a checkpoint in storage is fetched first."""
    if model == BUILTIN_MODEL or "://" not in model:
        return model
    url, _, name = model.rpartition("/")
    return str(BlobStore(url, settings).download(name, scratch / "model.pth"))


def _score_unit(
    plan: Plan,
    unit: Unit,
    source: Path,
    stylizer: Stylizer,
    work: BlobStore,
    scratch: Path,
    settings: Settings,
    threads: int,
) -> None:
    encoded = scratch / f"unit-{unit.index:05d}.mp4"
    with FrameEncoder(
        encoded,
        width=plan.width,
        height=plan.height,
        frame_rate=plan.rate,
        crf=plan.crf,
        threads=threads,
        timeout=settings.ffmpeg_timeout_s,
    ) as out:
        # read_frames checks the count, so a unit is uploaded only when it is whole.
        for frames in read_frames(
            source,
            width=plan.width,
            height=plan.height,
            seek_s=unit.seek_s,
            start_s=unit.start_s,
            end_s=unit.end_s,
            count=unit.frame_count,
            batch=settings.batch_size,
            threads=threads,
            timeout=settings.ffmpeg_timeout_s,
        ):
            out.write(stylizer(torch.from_numpy(frames)).numpy())
    work.upload(encoded, plan.unit_name(unit))
    encoded.unlink()
    log.info(
        "unit %d: frames %d..%d done",
        unit.index,
        unit.first_frame,
        unit.first_frame + unit.frame_count - 1,
    )
