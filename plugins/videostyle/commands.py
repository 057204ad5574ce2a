"""The command line of each step when run on this machine (the local launcher, `videostyle run`,
tests):
the steps table's command with this Python and this MPI's mpirun, and the process's env."""

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from videostyle.steps import table as steps_table


def mpirun() -> str:
    """The mpirun of the MPI that mpi4py was built against: the venv's first, then PATH's.

    An mpirun from another MPI than the ranks' library aborts with a PMI error.
    """
    beside_python = Path(sys.executable).parent / "mpirun"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("mpirun")
    if found is None:
        raise FileNotFoundError("mpirun not found: install the `mpich` wheel into this environment")
    return found


def step_argv(step: str, args: Sequence[str], *, ranks: int = 1) -> list[str]:
    """argv running CLI subcommand `step` here: this Python, under this MPI's mpirun for a step
    of the table that needs MPI on more than one rank (`run` and any other subcommand run as one
    process)."""
    spec = steps_table.STEPS.get(step)
    # One rank on this machine needs no MPI launcher: mpi4py starts it as a world of one.
    if spec is None or not spec.mpi or ranks == 1:
        return steps_table.cli_command(step, args, python=sys.executable)
    return spec.command(args, python=sys.executable, mpirun=mpirun(), ranks=ranks)


def process_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a step's process: this one's (the project is installed, so the
    package imports anywhere), with `extra`."""
    return {**os.environ, **(extra or {})}
