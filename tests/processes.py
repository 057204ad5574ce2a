"""The processes of one MPI world, read from /proc: find a rank by its MPI rank, freeze a
process tree so that what a test checks holds still, thaw or kill it.

mpich's hydra starts its proxy and each rank in a session of its own, so a signal to mpirun's
process group reaches mpirun alone: these signal each process of the tree.
"""

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_S = 300  # bounds only: nothing here waits on the clock for anything to happen


@dataclass(frozen=True)
class Process:
    pid: int
    started: str  # its start in clock ticks since boot: with the pid, it names one process


def _stat(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name: state, ppid, ... (None: gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process(pid: int) -> Process | None:
    fields = _stat(pid)
    return None if fields is None else Process(pid, fields[19])


def alive(proc: Process) -> bool:
    """Still running (or stopped): not gone, not a zombie, not a new process on its pid."""
    fields = _stat(proc.pid)
    return fields is not None and fields[19] == proc.started and fields[0] not in "ZX"


def descendants(root: int) -> list[int]:
    """The pids of `root`'s children, their children, and so on."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(entry.name)) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def argv(proc: Process) -> list[str]:
    try:
        return Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def environ(proc: Process) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{proc.pid}/environ").read_bytes().decode(errors="replace")
    except OSError:
        return {}
    return dict(v.split("=", 1) for v in raw.split("\0") if "=" in v)


def mpi_rank(proc: Process) -> int | None:
    """The world rank mpich's hydra gave the process (PMI_RANK), if any. A rank's children
    (its ffmpegs) inherit the variable: only a rank's python is the rank."""
    rank = environ(proc).get("PMI_RANK")
    return None if rank is None else int(rank)


def is_python(proc: Process) -> bool:
    try:
        return Path(f"/proc/{proc.pid}/exe").resolve() == Path(sys.executable).resolve()
    except OSError:
        return False


def is_scoring_rank(proc: Process, job: str) -> bool:
    """A python process of `python -m mpi4py -m videostyle score --job <job>` with a PMI rank,
    and not a copy a rank forked that has not yet run exec (`freeze` may catch one)."""
    words = ["-m", "mpi4py", "-m", "videostyle", "score", "--job", job]

    def runs_it(line: list[str]) -> bool:
        return any(line[i : i + len(words)] == words for i in range(len(line)))

    if not (runs_it(argv(proc)) and is_python(proc) and mpi_rank(proc) is not None):
        return False
    fields = _stat(proc.pid)
    parent = process(int(fields[1])) if fields is not None else None
    return parent is None or not (runs_it(argv(parent)) and is_python(parent))


def world_ranks(procs: Iterable[Process], job: str) -> list[int]:
    """The MPI ranks of `job`'s scoring ranks among `procs`, in order."""
    return sorted(r for p in procs if is_scoring_rank(p, job) and (r := mpi_rank(p)) is not None)


def scoring_rank(procs: Iterable[Process], rank: int, job: str) -> Process:
    """The one scoring rank of `job` among `procs` whose MPI rank is `rank`."""
    found = [p for p in procs if is_scoring_rank(p, job) and mpi_rank(p) == rank]
    assert len(found) == 1, f"rank {rank} of {job}: {found}"
    return found[0]


def wait_until(
    condition: Callable[[], object],
    what: str | Callable[[], str],
    *,
    timeout_s: float = TIMEOUT_S,
) -> None:
    """Poll a state until it holds; the timeout only bounds a test that would hang."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not within {timeout_s:.0f} s: {what if isinstance(what, str) else what()}"
            )
        time.sleep(0.02)


# Where a thread waits in the kernel while the child it vforked has not yet run exec (Python's
# subprocess vforks): a parent frozen there stays in D state, but runs no more than a stopped one.
VFORK_WAITS = ("kernel_clone", "wait_for_vfork_done")


def _stopped(proc: Process) -> bool:
    """Every thread of it stopped (or held in vfork by a child: freeze stops that too), or it
    is gone."""
    if not alive(proc):
        return True
    try:
        return all(map(_held, Path(f"/proc/{proc.pid}/task").iterdir()))
    except (OSError, IndexError):
        return not alive(proc)


def _held(task: Path) -> bool:
    state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
    return state in "tTZX" or (state == "D" and (task / "wchan").read_text() in VFORK_WAITS)


def freeze(root: int) -> list[Process]:
    """SIGSTOP `root` and every descendant of it, until none is left running that could start
    another; what was stopped. Nothing of the tree runs until `thaw` (or a SIGKILL)."""
    frozen: dict[int, Process] = {}
    while True:
        fresh = [
            proc
            for pid in (root, *descendants(root))
            if pid not in frozen and (proc := process(pid)) is not None and alive(proc)
        ]
        if not fresh:
            return list(frozen.values())
        for proc in fresh:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGSTOP)
            frozen[proc.pid] = proc
        # A process stops when it next runs: until then it might still fork.
        wait_until(lambda: all(map(_stopped, frozen.values())), "the tree stopped")


def thaw(procs: Iterable[Process]) -> None:
    for proc in procs:
        if alive(proc):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)


def kill_all(procs: Iterable[Process]) -> None:
    """SIGKILL each (a stopped process too): a failed test leaves nothing behind."""
    for proc in procs:
        if alive(proc):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)


def tree(root: int) -> list[Process]:
    """`root` and its descendants, as processes."""
    return [p for pid in (root, *descendants(root)) if (p := process(pid)) is not None]
