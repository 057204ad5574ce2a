"""The command line of each step when run on this machine: what every local launcher executes."""

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def mpirun() -> str:
    """The mpirun of the MPI that mpi4py was built against: the venv's first, then PATH's.

    A launcher from another MPI than the ranks' library aborts with a PMI error.
    """
    beside_python = Path(sys.executable).parent / "mpirun"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("mpirun")
    if found is None:
        raise FileNotFoundError("mpirun not found: install the `mpich` wheel into this environment")
    return found


def step_argv(step: str, args: Sequence[str], *, ranks: int = 1) -> list[str]:
    """argv running one CLI step; scoring runs under mpirun with one process per rank."""
    if step == "score":
        # `python -m mpi4py` turns one rank's uncaught exception into an abort of the whole world.
        return [
            mpirun(),
            "-n",
            str(ranks),
            sys.executable,
            "-m",
            "mpi4py",
            "-m",
            "videostyle",
            step,
            *args,
        ]
    return [sys.executable, "-m", "videostyle", step, *args]


def step_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a step's process: this one's, with the package importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p
    )
    env.update(extra or {})
    return env
