"""Subprocesses of the benchmark: their environment, and the wall and CPU time they take."""

import resource
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from videostyle.commands import process_env

ROOT = Path(__file__).resolve().parents[1]
# `python -m` puts its working directory first on sys.path: the root makes `bench` importable.
BENCH_CWD = ROOT


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A step's environment. The library is installed in the venv (`pip install -e .`); the
    benchmark's own modules (`python -m bench.X`) import from the repository root, the working
    directory `run` gives them (BENCH_CWD)."""
    return process_env(extra)


class Ran(NamedTuple):
    wall_s: float
    cpu_s: float  # of the process and all its descendants (ranks, ffmpeg)
    stdout: str


def run(
    argv: Sequence[str], environ: dict[str, str], *, timeout: float = 900, cwd: Path | None = None
) -> Ran:
    """Run to completion, or raise with the end of its stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        list(argv),
        env=environ,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Ran(wall, cpu, done.stdout)
