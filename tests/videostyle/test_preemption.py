"""A rank killed mid-scoring (a preempted node), or the launcher itself: the MPI world ends
instead of hanging, leaving none of its processes behind, and a rerun redoes only the lost
units, to a video identical, frame for frame, to an uninterrupted run.

The kill is never raced against the scoring. Once the first unit exists, every process of this
test's MPI world (mpirun, hydra's proxy, the ranks and their ffmpegs: the descendants of the
mpirun this test started, and nothing else on the machine) is stopped with SIGSTOP; the units
done are counted while nothing can change them; the victim, chosen by its MPI rank, is killed
and the others continued. mpich's hydra starts its proxy and each rank in a session of its own,
so a signal to mpirun's process group would reach mpirun alone: each process is signalled.

The process helpers are in tests/processes.py.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tests.media import decode_rgb
from tests.processes import (
    Process,
    alive,
    argv,
    freeze,
    is_python,
    kill_all,
    mpi_rank,
    scoring_rank,
    thaw,
    tree,
    wait_until,
    world_ranks,
)
from videostyle.commands import mpirun, process_env, step_argv
from videostyle.plan import load_plan
from videostyle.settings import Settings
from videostyle.storage import Stores

pytestmark = pytest.mark.integration

RANKS = 2
MAX_UNIT_FRAMES = 5  # the 50-frame sample clip: 10 units, 5 per rank
JOB = "preempted"
WORLD_END_S = 120  # bound on the world's end once a process of it is killed (hydra: 1 s)


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
    return process_env(settings), stores


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
