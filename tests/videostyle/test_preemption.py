"""A rank killed mid-scoring (a preempted node), or the launcher itself: the MPI world ends
instead of hanging, leaving none of its processes behind, and a rerun redoes only the lost
units, to a video identical, frame for frame, to an uninterrupted run.

The kill is never raced against the scoring. Once the first unit exists, every process of this
test's MPI world (mpirun, hydra's proxy, the ranks and their ffmpegs: the descendants of the
mpirun this test started, and nothing else on the machine) is stopped with SIGSTOP; the units
done are counted while nothing can change them; the victim, chosen by its MPI rank, is killed
and the others continued. mpich's hydra starts its proxy and each rank in a session of its own,
so a signal to mpirun's process group would reach mpirun alone: each process is signalled.

The helpers here (freeze, thaw, scoring_rank, ...) also serve the pipeline and live tests.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tests.media import decode_rgb
from videostyle.launch import mpirun, step_argv, step_env
from videostyle.plan import load_plan
from videostyle.settings import Settings
from videostyle.storage import Stores

pytestmark = pytest.mark.integration

RANKS = 2
MAX_UNIT_FRAMES = 5  # the 50-frame sample clip: 10 units, 5 per rank
JOB = "preempted"
TIMEOUT_S = 300  # bounds only: nothing here waits on the clock for anything to happen
WORLD_END_S = 120  # bound on the world's end once a process of it is killed (hydra: 1 s)


# --- the processes of one MPI world, by /proc ---------------------------------------------


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
    """A python process of `python -m mpi4py -m videostyle score --job <job>` with a PMI rank."""
    words = ["-m", "mpi4py", "-m", "videostyle", "score", "--job", job]
    line = argv(proc)
    runs_it = any(line[i : i + len(words)] == words for i in range(len(line)))
    return runs_it and is_python(proc) and mpi_rank(proc) is not None


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


def _stopped(proc: Process) -> bool:
    """Every thread of it stopped, or it is gone."""
    if not alive(proc):
        return True
    try:
        threads = list(Path(f"/proc/{proc.pid}/task").iterdir())
        states = [(t / "stat").read_text().rsplit(")", 1)[1].split()[0] for t in threads]
    except (OSError, IndexError):
        return not alive(proc)
    return all(state in "tTZX" for state in states)


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


# --- the test -----------------------------------------------------------------------------


def local_stores(root: Path) -> tuple[dict[str, str], Stores]:
    """A job's own folders: the environment of its steps, and the stores as they see them."""
    urls = {store: str(root / store) for store in ("inputs", "work", "outputs")}
    settings = {
        **{f"VIDEOSTYLE_{store.upper()}_URL": url for store, url in urls.items()},
        "VIDEOSTYLE_SCRATCH_DIR": str(root / "scratch"),
        "VIDEOSTYLE_MAX_UNIT_FRAMES": str(MAX_UNIT_FRAMES),
    }
    stores = Stores(
        Settings(inputs_url=urls["inputs"], work_url=urls["work"], outputs_url=urls["outputs"])
    )
    return step_env(settings), stores


def cli(env: dict[str, str], step: str, job: str, *args: str) -> None:
    done = subprocess.run(
        step_argv(step, ["--job", job, *args], ranks=RANKS),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{step} failed:\n{done.stderr[-3000:]}"


def prepared_job(root: Path, clip: Path, job: str) -> tuple[dict[str, str], Stores]:
    env, stores = local_stores(root)
    stores.inputs.upload(clip, "clip.mp4")
    cli(env, "preprocess", job, "--style", "scream", "--ranks", str(RANKS), "--", "clip.mp4")
    return env, stores


def stitched(env: dict[str, str], stores: Stores, job: str, tmp: Path) -> npt.NDArray[np.uint8]:
    cli(env, "stitch", job)
    name = load_plan(stores.work, job).stitched_name
    return decode_rgb(stores.work.download(name, tmp / f"{job}.mp4"))


@pytest.fixture(scope="module")
def straight(sample_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> npt.NDArray[np.uint8]:
    """The frames of the same job scored in one go."""
    root = tmp_path_factory.mktemp("straight")
    env, stores = prepared_job(root, sample_clip, "straight")
    cli(env, "score", "straight")
    return stitched(env, stores, "straight", root)


@pytest.mark.parametrize("victim", ["rank 0", "rank 1", "mpirun"])
def test_a_killed_rank_or_launcher_ends_the_world_and_the_rerun_resumes_identically(
    sample_clip: Path, straight: npt.NDArray[np.uint8], tmp_path: Path, victim: str
) -> None:
    env, stores = prepared_job(tmp_path, sample_clip, JOB)
    plan = load_plan(stores.work, JOB)
    units = [plan.unit_name(u) for u in plan.units]
    assert len(units) == 10

    def done() -> int:
        return sum(map(stores.work.exists, units))

    scoring = subprocess.Popen(
        step_argv("score", ["--job", JOB], ranks=RANKS),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    world: list[Process] = []
    try:
        wait_until(lambda: done() or scoring.poll() is not None, "the first unit")
        assert scoring.poll() is None, "scoring ended before its first unit was seen"
        world = freeze(scoring.pid)
        done_when_stopped = done()  # nothing of the world runs: it cannot change
        assert 1 <= done_when_stopped < len(units), "no unit left to lose"
        assert world_ranks(world, JOB) == list(range(RANKS))  # all of the world's, only them

        if victim == "mpirun":
            (target,) = (p for p in world if p.pid == scoring.pid)
            assert argv(target)[:3] == [mpirun(), "-n", str(RANKS)]
            assert not is_python(target)
            assert mpi_rank(target) is None
        else:
            target = scoring_rank(world, int(victim.removeprefix("rank ")), JOB)
            assert target.pid != scoring.pid
            assert argv(target)[0] == sys.executable  # the rank's python, not mpirun naming it
        os.kill(target.pid, signal.SIGKILL)  # a preempted node: no clean shutdown
        thaw(p for p in world if p != target)
        try:  # the others must not wait for it forever
            code = scoring.wait(timeout=WORLD_END_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"mpirun still runs {WORLD_END_S} s after its {victim} was killed")
        assert code != 0
        wait_until(
            lambda: not [p for p in world if alive(p)],
            lambda: f"the world's end: left {[argv(p) for p in world if alive(p)]}",
            timeout_s=WORLD_END_S,
        )
    except BaseException:
        kill_all([*world, *tree(scoring.pid)])  # stopped ones too: nothing left behind
        raise

    done_before_retry = done()  # the world is gone: now stable
    assert done_when_stopped <= done_before_retry < len(units), f"no work lost with the {victim}"
    cli(env, "score", JOB)  # the rerun, as Airflow's retry runs it
    assert done() == len(units)
    retried = json.loads(stores.work.read_bytes(plan.timing_name("score")))
    assert sum(r["skipped"] for r in retried["ranks"]) == done_before_retry
    assert sum(r["scored"] for r in retried["ranks"]) == len(units) - done_before_retry
    assert np.array_equal(stitched(env, stores, JOB, tmp_path), straight)
