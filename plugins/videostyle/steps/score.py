"""Score: each MPI rank styles its share of the units and uploads each one as it finishes.

A rank streams its units through stages that overlap: a thread decoding ahead (ffmpeg, across
unit boundaries), the model in the main thread, an encoder thread per unit (x264), and a thread
that finishes and uploads each encoded unit while the next one is styled. Every stage holds a
bounded number of batches, so memory does not grow with the length of the video.

A model that needs frames beyond a unit's borders (FrameModel.context_frames) gets each unit
whole, with up to that many frames before and after it decoded from the neighbouring units
(clipped at the video's ends); only the unit's own frames are written, and the facts the model
gives about the unit are stored beside it (`units/<index>.json`) before the unit is uploaded.

A unit whose output already exists is skipped, so a rerun after a failure redoes only lost work.
Each rank logs its progress (frames done, frames/s, ETA: videostyle.progress) as it styles.
"""

import argparse
import bisect
import contextlib
import json
import logging
import os
import resource
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from videostyle.errors import VideostyleError
from videostyle.media.frames import FrameEncoder, Frames, read_ahead, read_frames
from videostyle.models.base import FrameTransform, UnitTransform
from videostyle.models.registry import get_model
from videostyle.plan import Plan, Unit, load_plan, load_prepared
from videostyle.progress import RankProgress
from videostyle.scratch import scratch_folder
from videostyle.settings import Settings
from videostyle.split import rank_units
from videostyle.storage import BlobStore, Stores
from videostyle.timings import record, timed

log = logging.getLogger(__name__)

# torch.compile takes about 30 s on 2 CPU cores (5 s once inductor's on-disk cache holds the
# graph), then doubles the frames/s: from about 40 Mpx of a rank's frames (170 frames of
# 640x360) it gains even with a cold cache, and far sooner with a warm one.
COMPILE_MIN_PIXELS = 40_000_000


class Communicator(Protocol):
    """The part of an mpi4py communicator scoring uses."""

    def Get_rank(self) -> int: ...  # noqa: N802 (mpi4py's names)
    def Get_size(self) -> int: ...  # noqa: N802
    def gather(self, sendobj: Any, root: int = 0) -> list[Any] | None: ...


class UnitEnd:
    """What _decode yields after a unit's last batch: the unit is complete, its frame count
    checked (by read_frames)."""

    def __repr__(self) -> str:
        return "UNIT_END"


UNIT_END = UnitEnd()


def pick_device(setting: str, local_rank: int = 0) -> torch.device:
    """The CPU, or the GPU of this rank: ranks on one machine take its GPUs in turn."""
    if setting == "cpu" or (setting == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    gpus = torch.cuda.device_count()
    if not gpus:  # a node without its GPU: another try may land on one that has it
        raise VideostyleError("VIDEOSTYLE_DEVICE is cuda but this machine shows no CUDA device")
    return torch.device("cuda", local_rank % gpus)


def can_compile() -> bool:
    """Inductor builds CPU kernels with a C++ compiler, which slim images may lack."""
    return shutil.which(os.environ.get("CXX", "g++")) is not None


def should_compile(setting: str, device: torch.device, pixels: int) -> bool:
    """Whether to torch.compile for a rank with `pixels` of frames to style."""
    if setting != "auto":
        return setting == "on"
    # On CUDA a frame takes milliseconds: compiling is unmeasured there and left to "on".
    return device.type == "cpu" and pixels >= COMPILE_MIN_PIXELS and can_compile()


def score(
    stores: Stores,
    settings: Settings,
    *,
    job_id: str,
    comm: Communicator,
    local_ranks: int = 1,
    local_rank: int = 0,
) -> None:
    """Style this rank's units; `local_ranks` share this machine, this one is `local_rank`."""
    rank, size = comm.Get_rank(), comm.Get_size()
    plan = load_plan(stores.work, job_id)
    mine = [plan.units[i] for i in rank_units(len(plan.units), rank, size)]
    todo = [u for u in mine if not stores.work.exists(plan.unit_name(u))]
    device = pick_device(settings.device, local_rank)
    threads = max(1, (os.cpu_count() or 1) // local_ranks)
    torch.set_num_threads(threads)  # ranks on one machine share its cores
    batch = settings.batch_size or (8 if device.type == "cuda" else 1)
    frames = sum(u.frame_count for u in todo)
    share = sum(u.frame_count for u in mine)
    progress = RankProgress(rank=rank, size=size, total=share, done=share - frames)
    compiled = should_compile(settings.compile, device, frames * plan.width * plan.height)
    log.info(
        "rank %d/%d: %d units, %d already done; %d threads, batch %d, compiled %s",
        rank,
        size,
        len(mine),
        len(mine) - len(todo),
        threads,
        batch,
        compiled,
    )
    facts: dict[str, Any] = {
        "rank": rank,
        "scored": len(todo),
        "skipped": len(mine) - len(todo),
        "frames": frames,
        "threads": threads,
    }
    with timed() as took, scratch_folder(settings, job_id, f"score-rank{rank}") as scratch:
        if todo:
            facts |= _style_units(
                plan,
                todo,
                stores.work,
                scratch,
                settings,
                device=device,
                threads=threads,
                batch=batch,
                compiled=compiled,
                progress=progress,
            )
    progress.finish()
    ranks = comm.gather({**facts, **took, **_usage()})
    if ranks is not None:
        record(
            stores.work,
            plan,
            "score",
            {
                "seconds": max(r["seconds"] for r in ranks),
                "ranks": ranks,
                "model": plan.model,
                "device": str(device),
                "precision": settings.precision,
                "batch": batch,
                "compiled": compiled,
            },
        )


def from_cli(stores: Stores, settings: Settings, args: argparse.Namespace) -> None:
    """`videostyle score --job JOB`, one rank of the world mpirun started."""
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    local = world.Split_type(MPI.COMM_TYPE_SHARED)  # the ranks sharing this machine
    score(
        stores,
        settings,
        job_id=args.job,
        comm=world,
        local_ranks=local.Get_size(),
        local_rank=local.Get_rank(),
    )


def _style_units(
    plan: Plan,
    units: list[Unit],
    work: BlobStore,
    scratch: Path,
    settings: Settings,
    *,
    device: torch.device,
    threads: int,
    batch: int,
    compiled: bool,
    progress: RankProgress,
) -> dict[str, float]:
    """Load the model and stream `units` through it; the seconds of each phase."""
    context = get_model(plan.model).context_frames(plan.options)
    with timed() as loaded:
        model = get_model(plan.model).load(
            plan.options,
            load_prepared(work, plan),
            device=device,
            precision=settings.precision,
            compiled=compiled,
        )
    warm = {"seconds": 0.0}
    if compiled:  # the first batch compiles: on a dummy one, timed on its own
        with timed() as warm:
            model.warm_up(batch, plan.height, plan.width)
    source = work.download(plan.source_name, scratch / f"source{plan.source_ext}")
    plan.check_source(source)
    # On a GPU the cores are free to decode and encode; on a CPU the model needs them and
    # ffmpeg (a sixth of its work at most) runs single-threaded beside it.
    media_threads = threads if device.type == "cuda" else 1
    with timed() as streamed:
        model_s = _stream(
            plan,
            units,
            source,
            model,
            work=work,
            scratch=scratch,
            batch=batch,
            threads=media_threads,
            timeout=settings.ffmpeg_timeout_s,
            progress=progress,
            context=context,
        )
    return {
        "load_seconds": loaded["seconds"],
        "warmup_seconds": warm["seconds"],
        "stream_seconds": streamed["seconds"],
        "model_seconds": round(model_s, 3),
    }


def _usage() -> dict[str, float]:
    """This rank's peak resident memory (MiB), and CPU seconds of its own threads and of the
    ffmpeg processes it ran: where a CPU-bound rank's time went."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    ffmpeg = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "peak_rss_mb": round(own.ru_maxrss / 1024, 1),  # Linux counts KiB
        "cpu_seconds": round(own.ru_utime + own.ru_stime, 2),
        "ffmpeg_cpu_seconds": round(ffmpeg.ru_utime + ffmpeg.ru_stime, 2),
    }


def _stream(
    plan: Plan,
    units: list[Unit],
    source: Path,
    model: FrameTransform,
    *,
    work: BlobStore,
    scratch: Path,
    batch: int,
    threads: int,
    timeout: float,
    progress: RankProgress,
    context: int = 0,
) -> float:
    """Style `units` in order and upload each; returns the seconds spent in the model. With
    `context` frames, each unit is styled whole by the model's `unit` (see the module's doc)."""
    model_s = 0.0
    window: list[Frames] = []  # with context: the unit's window so far
    progress.start()
    encoder: FrameEncoder | None = None
    finishing: Future[None] | None = None
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="finish") as finisher,
        contextlib.closing(
            read_ahead(
                _decode(
                    plan,
                    units,
                    source,
                    batch=batch,
                    threads=threads,
                    timeout=timeout,
                    context=context,
                )
            )
        ) as decoded,
    ):
        try:
            for unit, frames in decoded:
                if encoder is None:
                    encoder = FrameEncoder(
                        scratch / f"unit-{unit.index:05d}.mp4",
                        width=plan.width,
                        height=plan.height,
                        frame_rate=plan.rate,
                        crf=plan.crf,
                        threads=threads,
                        timeout=timeout,
                        pix_fmt=plan.pix_fmt,
                    )
                if isinstance(frames, UnitEnd) and context:
                    # The unit's window is complete: style it whole.
                    start = time.perf_counter()
                    styled, facts = _style_unit(model, plan, unit, window, context)
                    model_s += time.perf_counter() - start
                    window = []
                    # Before the unit itself, whose presence means done.
                    work.write_bytes(unit_facts_name(plan, unit), facts)
                    encoder.write(styled)
                    progress.advance(len(styled))
                if isinstance(frames, UnitEnd):
                    # Whole: finish and upload it while the next one is styled.
                    if finishing is not None:
                        finishing.result()  # one unit in the background at a time
                    finishing = finisher.submit(_finish, encoder, plan, unit, work)
                    encoder = None
                    continue
                if context:
                    window.append(frames)
                    continue
                start = time.perf_counter()
                styled = model(torch.from_numpy(frames)).numpy()
                model_s += time.perf_counter() - start
                if styled.shape != frames.shape or styled.dtype != frames.dtype:
                    raise TypeError(
                        f"model {plan.model} turned frames {frames.dtype}{list(frames.shape)} "
                        f"into {styled.dtype}{list(styled.shape)}: it must keep both"
                    )
                encoder.write(styled)
                progress.advance(len(styled))
        except BaseException:
            if encoder is not None:
                encoder.abort()
            raise
        if finishing is not None:
            finishing.result()
    return model_s


def _style_unit(
    model: FrameTransform, plan: Plan, unit: Unit, window: list[Frames], context: int
) -> tuple[Frames, bytes]:
    """The unit styled by the model's `unit` from its decoded window, and its facts as JSON."""
    first, _ = _window(plan, unit, context)
    lead = unit.first_frame - first
    frames = torch.from_numpy(window[0] if len(window) == 1 else np.concatenate(window))
    styled_t, facts = _as_unit_transform(model).unit(frames, lead=lead, count=unit.frame_count)
    styled = styled_t.numpy()
    expected = (unit.frame_count, *frames.shape[1:])
    if styled.shape != expected or styled.dtype != np.uint8:
        raise TypeError(
            f"model {plan.model} styled unit {unit.index} as {styled.dtype}{list(styled.shape)}, "
            f"not uint8{list(expected)}"
        )
    return styled, json.dumps(facts, allow_nan=False).encode()


def unit_facts_name(plan: Plan, unit: Unit) -> str:
    """Where the facts a model gave about a unit lie: beside the unit, `units/<index>.json`."""
    return plan.unit_name(unit).removesuffix(".mp4") + ".json"


def _as_unit_transform(model: FrameTransform) -> UnitTransform:
    if not callable(getattr(model, "unit", None)):
        raise TypeError(f"a model with context frames loads a UnitTransform, not {model!r}")
    return model  # type: ignore[return-value]


def _window(plan: Plan, unit: Unit, context: int) -> tuple[int, int]:
    """Frames [start, stop) of `unit` and up to `context` frames each side, within the video."""
    return (
        max(0, unit.first_frame - context),
        min(plan.frame_count, unit.first_frame + unit.frame_count + context),
    )


def _decode(
    plan: Plan,
    units: list[Unit],
    source: Path,
    *,
    batch: int,
    threads: int,
    timeout: float,
    context: int = 0,
) -> Iterator[tuple[Unit, Frames | UnitEnd]]:
    """Each unit's batches, then (unit, UNIT_END) once read_frames has checked its frame count;
    with `context`, the batches of its window (_window) instead."""
    for unit in units:
        if context:
            for frames in _window_frames(
                plan, unit, source, context, batch=batch, threads=threads, timeout=timeout
            ):
                yield unit, frames
            yield unit, UNIT_END
            continue
        for frames in read_frames(
            source,
            width=plan.width,
            height=plan.height,
            seek_s=unit.seek_s,
            start_s=unit.start_s,
            end_s=unit.end_s,
            count=unit.frame_count,
            batch=batch,
            threads=threads,
            timeout=timeout,
            deinterlace=plan.deinterlace,
        ):
            yield unit, frames
        yield unit, UNIT_END


def _window_frames(
    plan: Plan,
    unit: Unit,
    source: Path,
    context: int,
    *,
    batch: int,
    threads: int,
    timeout: float,
) -> Iterator[Frames]:
    """The frames of `unit`'s window, decoded by time as units are: from the start of the unit
    holding its first frame, up to the end of the unit holding its last."""
    start, stop = _window(plan, unit, context)
    firsts = [u.first_frame for u in plan.units]
    before = plan.units[bisect.bisect_right(firsts, start) - 1]
    after = plan.units[bisect.bisect_right(firsts, stop - 1) - 1]
    skip, want = start - before.first_frame, stop - start
    got = 0
    decoded = read_frames(
        source,
        width=plan.width,
        height=plan.height,
        seek_s=before.seek_s,
        start_s=before.start_s,
        end_s=after.end_s,
        count=after.first_frame + after.frame_count - before.first_frame,
        batch=batch,
        threads=threads,
        timeout=timeout,
        deinterlace=plan.deinterlace,
    )
    try:
        for frames in decoded:
            cut = frames[min(skip, len(frames)) :]
            skip = max(0, skip - len(frames))
            cut = cut[: want - got]
            if len(cut):
                yield cut
                got += len(cut)
            if got == want:
                return  # closing the decoder (below) ends its ffmpeg: the rest is not needed
    finally:
        close = getattr(decoded, "close", None)  # read_frames is a generator
        if close is not None:
            close()
    raise VideostyleError(f"unit {unit.index}: decoded {got} of its window's {want} frames")


def _finish(encoder: FrameEncoder, plan: Plan, unit: Unit, work: BlobStore) -> None:
    encoder.close()
    work.upload(encoder.path, plan.unit_name(unit))
    encoder.path.unlink()
    log.info(
        "unit %d: frames %d..%d done",
        unit.index,
        unit.first_frame,
        unit.first_frame + unit.frame_count - 1,
    )
