"""Model alone: a loaded model (uint8 frames in, uint8 frames out) fed from memory, no video.

Every registered model is loaded through the registry with sample options (SAMPLE_OPTIONS); the
checkpoint model as TransformerNet, from the stand-in checkpoint. A model that prepares
something once per job gets it from a real preprocess of the sample clip beside the checkpoint
(bench.pipeline.prepared), as its scoring ranks would.

Each case is measured after one warm-up batch (compiling, kernel selection), as the median time
of repeated batches over a few seconds. A case with several processes runs that many workers
of `cores / processes` threads side by side, as the ranks of the scoring step do, started
together once all are warm; their frames/s add up.

    python -m bench.model_only CASE_JSON CHECKPOINT THREADS SECONDS   (one worker; internal)

One case on its own, e.g. painting at 720p on this machine's cores:

    .venv/bin/python -c "from bench.model_only import *; \
        print(measure_alone(Case('painting', 1280, 720, 'fp32', 1)))"
"""

import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench import pipeline, proc
from bench.media import camera_clip, save_style_image, stand_in_checkpoint
from videostyle.models.base import FrameModel, FrameTransform, Prepared
from videostyle.models.registry import MODELS, get_model, load_model

STYLE = "starry-night"
TN = "transformer_net"  # the checkpoint model, on the stand-in checkpoint
STYLE_IMAGE = "coffee.jpg"  # scikit-image's photo, saved beside the checkpoint
# Each model's options in the benchmark (a `style_image` is a file beside the checkpoint); a
# model not named here runs with its defaults.
SAMPLE_OPTIONS: dict[str, dict[str, Any]] = {
    "multistyle26": {"style": STYLE},
    "painting": {"style_image": STYLE_IMAGE},
}
SAMPLE_CLIP = "sample-1s.mp4"  # what a model's once-per-job preparation is run on
# An eager batch slower than this is timed once, by its warm-up: the first call's own
# overhead (well under a second) is small beside it, and the grid stays within minutes.
SLOW_S = 6.0


@dataclass(frozen=True)
class Case:
    model: str  # a registered model's name, or TN
    width: int
    height: int
    precision: str
    batch: int
    compiled: bool = False
    processes: int = 1

    @property
    def family(self) -> tuple[object, ...]:
        """Cases that differ only in batch size."""
        return (self.model, self.width, self.height, self.precision, self.compiled, self.processes)


def registered_models() -> list[str]:
    """The models measured by name: every registered one but the checkpoint model (measured as
    TN)."""
    return [name for name in MODELS if name != "checkpoint"]


def sample_options(model: str, inputs: Path) -> dict[str, Any]:
    """`model`'s options in the benchmark, a `style_image` as a file in `inputs`."""
    options = dict(SAMPLE_OPTIONS.get(model, {}))
    if "style_image" in options:
        options["style_image"] = str(save_style_image(inputs / options["style_image"]))
    return options


def job_side(options: dict[str, Any]) -> dict[str, Any]:
    """The options as a job holds them: a `style_image` the name of its copy in the styles
    store, as `videostyle run` names it (videostyle.pipeline.local_style_image)."""
    if "style_image" in options:
        return options | {"style_image": Path(options["style_image"]).name}
    return options


@functools.cache
def _prepared(model: str, inputs: Path) -> Prepared:
    """What `model` prepares once per job for its sample options, from a preprocess of a short
    sample clip in `inputs`; None without a preprocess for a model that prepares nothing."""
    if type(get_model(model)).prepare is FrameModel.prepare:
        return None
    clip = inputs / SAMPLE_CLIP
    if not clip.exists():
        camera_clip(clip, frames=24)
    return pipeline.prepared(clip, model, sample_options(model, inputs), inputs)


def _frame_transform(case: Case, checkpoint: Path) -> FrameTransform:
    cpu, precision, compiled = torch.device("cpu"), case.precision, case.compiled
    if case.model != TN:
        inputs = checkpoint.parent
        return load_model(
            case.model,
            job_side(sample_options(case.model, inputs)),
            device=cpu,
            precision=precision,
            compiled=compiled,
            prepared=_prepared(case.model, inputs),
        )
    options, weights = {"checkpoint": str(checkpoint)}, checkpoint.read_bytes()
    return load_model(
        "checkpoint", options, device=cpu, precision=precision, compiled=compiled, prepared=weights
    )


def _frames(case: Case) -> torch.Tensor:
    shape = (case.batch, case.height, case.width, 3)
    return torch.from_numpy(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8))


def flops_per_frame(model: str, checkpoint: Path, width: int, height: int) -> int:
    """FLOP of one frame as torch's flop counter sees them: convolutions and matmuls, a
    multiply-add counted as 2; norms and activations (under 1%) are not counted."""
    transform = _frame_transform(Case(model, width, height, "fp32", 1), checkpoint)
    with FlopCounterMode(display=False) as counter:
        transform(torch.zeros((1, height, width, 3), dtype=torch.uint8))
    return int(counter.get_total_flops())


def measure(
    case: Case,
    checkpoint: Path,
    *,
    threads: int,
    seconds: float,
    when_warm: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """frames/s of one process; `when_warm` (workers) waits until all are warm."""
    torch.set_num_threads(threads)
    transform, frames = _frame_transform(case, checkpoint), _frames(case)
    start = time.perf_counter()
    transform(frames)
    warm_s = time.perf_counter() - start
    if when_warm is not None:
        when_warm()
    if when_warm is None and not case.compiled and warm_s > SLOW_S:
        times = [warm_s]
    else:
        times = []
        deadline = time.perf_counter() + seconds
        while len(times) < 2 or time.perf_counter() < deadline:
            start = time.perf_counter()
            transform(frames)
            times.append(time.perf_counter() - start)
    return {
        "fps": case.batch / statistics.median(times),
        "reps": len(times),
        "warmup_s": round(warm_s, 2),
    }


def measure_processes(
    case: Case, checkpoint: Path, *, cores: int, seconds: float
) -> dict[str, Any]:
    """frames/s of `case.processes` workers side by side, added up."""
    threads = max(1, cores // case.processes)
    argv = [
        sys.executable,
        "-m",
        "bench.model_only",
        json.dumps(asdict(case)),
        str(checkpoint),
        str(threads),
        str(seconds),
    ]
    workers = [
        subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=proc.env(),
            cwd=proc.BENCH_CWD,
            text=True,
        )
        for _ in range(case.processes)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            if worker.stdout.readline().strip() != "warm":
                raise RuntimeError(f"a model-only worker failed: {argv}")
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = [json.loads(w.communicate(timeout=600)[0]) for w in workers]
    finally:
        for worker in workers:
            worker.kill()
    return {
        "fps": sum(r["fps"] for r in results),
        "reps": min(r["reps"] for r in results),
        "warmup_s": max(r["warmup_s"] for r in results),
        "threads": threads,
    }


def grid(
    cases: list[Case],
    checkpoint: Path,
    *,
    cores: int,
    seconds: float,
    budget_s: float,
    flops: Callable[[Case], int],
    peak_gflops: Callable[[str], float],
    report: Callable[[dict[str, Any]], None],
) -> list[dict[str, Any]]:
    """Measure `cases` in order; a case predicted (from a smaller batch of its family) to take
    longer than `budget_s` is skipped and says so."""
    seconds_per_frame: dict[tuple[object, ...], float] = {}
    rows = []
    for case in cases:
        row: dict[str, Any] = asdict(case)
        known = seconds_per_frame.get(case.family)
        batch_s = case.batch * known if known is not None else 0.0
        predicted = batch_s if batch_s > SLOW_S else 3 * batch_s  # warm-up + 2 timed
        if predicted > budget_s:
            row["skipped"] = f"predicted {predicted:.0f} s, over the {budget_s:.0f} s per case"
        else:
            if case.processes == 1:
                row |= measure(case, checkpoint, threads=cores, seconds=seconds) | {
                    "threads": cores
                }
            else:
                row |= measure_processes(case, checkpoint, cores=cores, seconds=seconds)
            seconds_per_frame[case.family] = 1 / row["fps"]
            gflops = flops(case) * row["fps"] / 1e9
            row |= {"gflops": gflops, "peak_share": gflops / peak_gflops(case.precision)}
        rows.append(row)
        report(row)
    return rows


def measure_alone(case: Case, *, seconds: float = 3.0) -> dict[str, Any]:
    """One case on its own, on this machine's cores, with its inputs in a temporary folder:
    frames/s, reps, warm-up seconds."""
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="videostyle-bench-") as tmp:
        checkpoint = stand_in_checkpoint(Path(tmp) / "stand-in.pth")
        if case.processes > 1:
            return measure_processes(case, checkpoint, cores=cores, seconds=seconds)
        return measure(case, checkpoint, threads=cores, seconds=seconds) | {"threads": cores}


def _worker(argv: list[str]) -> None:
    case_json, checkpoint, threads, seconds = argv

    def when_warm() -> None:
        print("warm", flush=True)
        sys.stdin.readline()

    result = measure(
        Case(**json.loads(case_json)),
        Path(checkpoint),
        threads=int(threads),
        seconds=float(seconds),
        when_warm=when_warm,
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    _worker(sys.argv[1:])
