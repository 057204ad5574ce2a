"""A rank killed mid-scoring (a preempted node): the MPI world aborts instead of hanging, and a
rerun resumes to a video identical, frame for frame, to an uninterrupted run."""

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.media import decode_rgb
from videostyle.launch import step_argv, step_env
from videostyle.plan import load_plan
from videostyle.settings import Settings
from videostyle.storage import Stores

pytestmark = pytest.mark.integration

RANKS = 2


@pytest.fixture
def local_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stores:
    for store in ("inputs", "work", "outputs"):
        monkeypatch.setenv(f"VIDEOSTYLE_{store.upper()}_URL", str(tmp_path / store))
    monkeypatch.setenv("VIDEOSTYLE_SCRATCH_DIR", str(tmp_path / "scratch"))
    monkeypatch.setenv("VIDEOSTYLE_MAX_UNIT_FRAMES", "5")  # 50 frames: 10 units
    return Stores(Settings())


def cli(step: str, job: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        step_argv(step, ["--job", job, *args], ranks=RANKS),
        env=step_env(),
        capture_output=True,
        timeout=600,
        check=False,
    )


def ranks_of(job: str) -> list[int]:
    """PIDs of the scoring ranks of `job` (the python processes, not mpirun)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"mpi4py" in argv and b"score" in argv and job.encode() in argv:
            pids.append(int(entry.name))
    return pids


def styled_video(stores: Stores, job: str, tmp_path: Path) -> np.ndarray:
    assert cli("stitch", job).returncode == 0
    return decode_rgb(
        stores.work.download(load_plan(stores.work, job).stitched_name, tmp_path / f"{job}.mp4")
    )


@pytest.mark.parametrize("units_before_kill", [1, 6])
def test_killed_rank_aborts_the_world_and_the_retry_resumes_identically(
    local_stores: Stores,
    sample_clip: Path,
    tmp_path: Path,
    units_before_kill: int,
) -> None:
    stores = local_stores
    stores.inputs.upload(sample_clip, "clip.mp4")
    for job in ("straight", "preempted"):
        assert (
            cli(
                "preprocess", job, "--style", "scream", "--ranks", str(RANKS), "--", "clip.mp4"
            ).returncode
            == 0
        )
    assert cli("score", "straight").returncode == 0
    plan = load_plan(stores.work, "preempted")
    units = [plan.unit_name(u) for u in plan.units]

    scoring = subprocess.Popen(
        step_argv("score", ["--job", "preempted"], ranks=RANKS),
        env=step_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while sum(map(stores.work.exists, units)) < units_before_kill:
        assert time.monotonic() < deadline
        assert scoring.poll() is None
        time.sleep(0.05)
    victim = random.Random(units_before_kill).choice(ranks_of("preempted"))  # noqa: S311
    os.kill(victim, signal.SIGKILL)
    try:
        code = scoring.wait(timeout=60)  # the other rank must not wait forever for its peer
    finally:
        if scoring.poll() is None:
            os.killpg(scoring.pid, signal.SIGKILL)
    assert code != 0
    done_before_retry = sum(map(stores.work.exists, units))
    assert done_before_retry < len(units), "scoring finished before the kill"
    deadline = time.monotonic() + 30
    while ranks_of("preempted"):
        assert time.monotonic() < deadline, f"ranks left behind: {ranks_of('preempted')}"
        time.sleep(0.2)

    assert cli("score", "preempted").returncode == 0  # Airflow's retry
    assert all(map(stores.work.exists, units))
    retried = json.loads(stores.work.read_bytes(plan.timing_name("score")))
    assert sum(r["skipped"] for r in retried["ranks"]) == done_before_retry  # only lost work redone
    assert np.array_equal(
        styled_video(stores, "preempted", tmp_path), styled_video(stores, "straight", tmp_path)
    )
