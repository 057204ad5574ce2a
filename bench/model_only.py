"""Model alone: the Stylizer (uint8 frames in, uint8 frames out) fed from memory, no video.

Each case is measured after one warm-up batch (compiling, kernel selection), as the median time
of repeated batches over a few seconds. A case with several processes runs that many workers
of `cores / processes` threads side by side, as the ranks of the scoring step do, started
together once all are warm; their frames/s add up.

    python -m bench.model_only CASE_JSON MODEL THREADS SECONDS   (one worker; used internally)
"""

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench import proc
from videostyle.defaults import BUILTIN_MODEL
from videostyle.models.base import FrameTransform
from videostyle.models.registry import load_model

STYLE = "starry-night"
# An eager batch slower than this is timed once, by its warm-up: the first call's own
# overhead (well under a second) is small beside it, and the grid stays within minutes.
SLOW_S = 6.0


@dataclass(frozen=True)
class Case:
    model: str  # BUILTIN_MODEL or "transformer_net"
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


def _stylizer(case: Case, checkpoint: Path) -> FrameTransform:
    cpu, precision, compiled = torch.device("cpu"), case.precision, case.compiled
    if case.model == BUILTIN_MODEL:
        options = {"style": STYLE}
        return load_model(
            BUILTIN_MODEL, options, device=cpu, precision=precision, compiled=compiled
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
    stylizer = _stylizer(Case(model, width, height, "fp32", 1), checkpoint)
    with FlopCounterMode(display=False) as counter:
        stylizer(torch.zeros((1, height, width, 3), dtype=torch.uint8))
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
    stylizer, frames = _stylizer(case, checkpoint), _frames(case)
    start = time.perf_counter()
    stylizer(frames)
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
            stylizer(frames)
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
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=proc.env(), text=True
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
