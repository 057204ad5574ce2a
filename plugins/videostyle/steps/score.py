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

from videostyle.compile_cache import CompileCache, Warmth, cache_key
from videostyle.errors import VideostyleError
from videostyle.media.ffmpeg import ffmpeg_cpu
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

# Compile when a rank's frames make up for it: at least this many megapixels of them, by
# precision and by whether compiled kernels are at hand (the machine's or the store's compile
# cache) or must be made cold. Measured on 2 CPU cores at 640x360: a cold compile costs 20-35 s
# and a warm one about 4 s (inductor's import and the trace included); compiled styling saves
# 0.72 s/Mpx in fp32 (3.4 -> 7.6 frames/s per core) and 0.28 s/Mpx in bf16 (7.9 -> 16).
COMPILE_MIN_MPX = {
    ("fp32", Warmth.COLD): 50,
    ("fp32", Warmth.STORE): 6,
    ("fp32", Warmth.MACHINE): 6,
    ("bf16", Warmth.COLD): 125,
    ("bf16", Warmth.STORE): 15,
    ("bf16", Warmth.MACHINE): 15,
}


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


def pick_precision(setting: str, device: torch.device) -> str:
    """`setting`, or for "auto" the fastest precision the hardware runs natively: bf16 on a CPU
    with AVX512-BF16 or AMX and on a CUDA device with bf16 units (Ampere on; its range spares
    networks that work in 0-255 pixels the overflows of fp16), fp16 on older CUDA, else fp32.
    Each stays within the pipeline's PSNR bound of fp32 (the test of this function checks every
    styling model in each)."""
    if setting != "auto":
        return setting
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    # Without native units bf16 is emulated on CPU: 5-7x slower than fp32 (bench, Zen 3).
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return "bf16" if native else "fp32"


def can_compile() -> bool:
    """Inductor builds CPU kernels with a C++ compiler, which slim images may lack."""
    return shutil.which(os.environ.get("CXX", "g++")) is not None


def should_compile(
    setting: str, device: torch.device, pixels: int, *, precision: str, cache: CompileCache
) -> bool:
    """Whether to torch.compile for a rank with `pixels` of frames to style."""
    if setting != "auto":
        return setting == "on"
    # On CUDA a frame takes milliseconds: compiling is unmeasured there and left to "on".
    if device.type != "cpu" or not can_compile():
        return False
    least = COMPILE_MIN_MPX.get((precision, cache.warmth()))  # None: fp16 is CUDA's alone
    return least is not None and pixels >= least * 1e6


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
    precision = pick_precision(settings.precision, device)
    threads = max(1, (os.cpu_count() or 1) // local_ranks)
    torch.set_num_threads(threads)  # ranks on one machine share its cores
    batch = settings.batch_size or (8 if device.type == "cuda" else 1)
    frames = sum(u.frame_count for u in todo)
    share = sum(u.frame_count for u in mine)
    progress = RankProgress(rank=rank, size=size, total=share, done=share - frames)
    cache = CompileCache(
        stores.work,
        settings.compile_cache_dir,
        cache_key(
            plan.model,
            width=plan.width,
            height=plan.height,
            batch=batch,
            precision=precision,
            device=device,
            threads=threads,
        ),
    )
    pixels = frames * plan.width * plan.height
    compiled = bool(todo) and should_compile(
        settings.compile, device, pixels, precision=precision, cache=cache
    )
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
                precision=precision,
                threads=threads,
                batch=batch,
                compiled=compiled,
                cache=cache,
                progress=progress,
            )
    progress.finish()
    facts["first_frame_unix"] = progress.first_styled_at
    ranks = comm.gather({**facts, **took, **_usage(frames)})
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
                "precision": precision,
                "batch": batch,
                "compiled": compiled,
                # Every rank's ffmpeg: decoding the source and encoding the units.
                "ffmpeg_decode_cpu_seconds": round(
                    sum(r["ffmpeg_decode_cpu_seconds"] for r in ranks), 3
                ),
                "ffmpeg_encode_cpu_seconds": round(
                    sum(r["ffmpeg_encode_cpu_seconds"] for r in ranks), 3
                ),
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
    precision: str,
    threads: int,
    batch: int,
    compiled: bool,
    cache: CompileCache,
    progress: RankProgress,
) -> dict[str, float | str | int]:
    """Load the model and stream `units` through it; the seconds of each phase."""
    context = get_model(plan.model).context_frames(plan.options)
    warmth = cache.use() if compiled else None
    with timed() as loaded:
        model = get_model(plan.model).load(
            plan.options,
            load_prepared(work, plan),
            device=device,
            precision=precision,
            compiled=compiled,
        )
    warm: dict[str, float] = {}
    if compiled:  # the first batch compiles: on a dummy one, timed on its own
        with timed() as took:
            model.warm_up(batch, plan.height, plan.width)
        warm = {"warmup_seconds": took["seconds"]}
        if warmth is Warmth.COLD:
            cache.keep()
    if plan.temporal:  # steadied over time: each unit with the frames that warm its state
        from videostyle.temporal.steady import LEAD_FRAMES, Steady

        model = Steady(model, batch=batch)
        context = max(context, LEAD_FRAMES)
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
        **warm,
        "stream_seconds": streamed["seconds"],
        "model_seconds": round(model_s, 3),
        "compile_cache": str(warmth or "unused"),
        **(_graph_counts() if compiled else {}),
    }


def _graph_counts() -> dict[str, int]:
    """Inductor's own count of the graphs it compiled here and reused from its cache."""
    from torch._dynamo.utils import counters  # a second of imports: only when compiling

    inductor = counters["inductor"]
    return {
        "graphs_compiled": inductor["fxgraph_cache_miss"],
        "graphs_reused": inductor["fxgraph_cache_hit"],
    }


def _usage(frames: int) -> dict[str, float]:
    """This rank's peak resident memory (MiB), and CPU seconds of its own threads and of the
    processes it ran (ffmpeg, and the C++ compiler when compiling): where a CPU-bound rank's
    time went. Of those, its ffmpeg decoders' and encoders' own (each child's rusage: see
    videostyle.media.ffmpeg.reap), in all and per frame of the `frames` it styled. Like the
    other figures, since the process started: a rank is a process of its own."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    media = ffmpeg_cpu()
    decode, encode = media.get("decode", 0.0), media.get("encode", 0.0)
    return {
        "peak_rss_mb": round(own.ru_maxrss / 1024, 1),  # Linux counts KiB
        "cpu_seconds": round(own.ru_utime + own.ru_stime, 2),
        "ffmpeg_cpu_seconds": round(children.ru_utime + children.ru_stime, 2),
        "ffmpeg_decode_cpu_seconds": round(decode, 3),
        "ffmpeg_encode_cpu_seconds": round(encode, 3),
        "ffmpeg_decode_ms_per_frame": round(1000 * decode / frames, 3) if frames else 0.0,
        "ffmpeg_encode_ms_per_frame": round(1000 * encode / frames, 3) if frames else 0.0,
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
