"""A step's command line on this machine: mpirun only where there is more than one rank."""

import sys

from videostyle.commands import mpirun, step_argv


def test_scoring_on_several_ranks_runs_under_this_mpis_mpirun() -> None:
    argv = step_argv("score", ["--job", "j"], ranks=2)
    assert argv[:3] == [mpirun(), "-n", "2"]
    assert argv[3:] == [sys.executable, "-m", "mpi4py", "-m", "videostyle", "score", "--job", "j"]


def test_one_rank_needs_no_mpi_launcher() -> None:
    argv = step_argv("score", ["--job", "j"], ranks=1)
    assert argv == [sys.executable, "-m", "videostyle", "score", "--job", "j"]
    assert step_argv("stitch", ["--job", "j"], ranks=2) == [
        *argv[:3],
        "stitch",
        "--job",
        "j",
    ]
