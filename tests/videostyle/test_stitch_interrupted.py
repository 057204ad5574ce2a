"""Stitch killed midway (SIGKILL: a preempted node, no clean-up) leaves nothing under the
stitched name and nothing half-written in the work store; its rerun stitches every frame at the
source's times, the same pixels as a job stitched in one go."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.media import decode_rgb, frame_times, make_clip
from videostyle.commands import process_env, step_argv
from videostyle.plan import load_plan
from videostyle.settings import Settings
from videostyle.storage import Stores

pytestmark = pytest.mark.integration

FRAMES = 30
UNIT_FRAMES = 5  # 30 frames: 6 units

# Put first on the stitch step's PATH: the real ffmpeg does the step's work, then this stops
# itself before returning, holding the step at a known point: stitched in scratch, not uploaded.
HOLDING_FFMPEG = """#!/bin/sh
"$REAL_FFMPEG" "$@"
status=$?
kill -STOP $$
exit $status
"""


@pytest.fixture
def local_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stores:
    for store in ("inputs", "work", "outputs", "styles"):
        monkeypatch.setenv(f"VIDEOSTYLE_{store.upper()}_URL", str(tmp_path / store))
    monkeypatch.setenv("VIDEOSTYLE_SCRATCH_DIR", str(tmp_path / "scratch"))
    monkeypatch.setenv("VIDEOSTYLE_MAX_UNIT_FRAMES", str(UNIT_FRAMES))
    return Stores(Settings())


def cli(step: str, *args: str) -> None:
    done = subprocess.run(
        step_argv(step, list(args), ranks=1),
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{step} failed:\n{done.stderr[-3000:]}"


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, with their state letter (R, S, T...)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # not a process, or one that just ended
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid:
            found[int(entry.name)] = state
    return found


def work_files(stores: Stores) -> list[str]:
    """Every file of the local work store, as a reader listing the folder sees them."""
    root = Path(stores.work.root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_stitch_killed_midway_reruns_to_every_frame(local_stores: Stores, tmp_path: Path) -> None:
    stores = local_stores
    clip = make_clip(tmp_path / "clip.mp4", frames=FRAMES, size=(64, 48))
    stores.inputs.upload(clip, "clip.mp4")
    for job in ("twin", "killed"):
        cli("preprocess", "clip.mp4", "--job", job, "--style", "scream", "--ranks", "1")
        cli("score", "--job", job)
    cli("stitch", "--job", "twin")  # the same job, stitched uninterrupted
    plan = load_plan(stores.work, "killed")
    assert (plan.frame_count, len(plan.units)) == (FRAMES, FRAMES // UNIT_FRAMES)

    holding = tmp_path / "holding"
    holding.mkdir()
    (holding / "ffmpeg").write_text(HOLDING_FFMPEG)
    (holding / "ffmpeg").chmod(0o755)
    real_ffmpeg = shutil.which("ffmpeg")
    assert real_ffmpeg is not None
    env = process_env(
        {"PATH": f"{holding}{os.pathsep}{os.environ['PATH']}", "REAL_FFMPEG": real_ffmpeg}
    )
    stitching = subprocess.Popen(
        step_argv("stitch", ["--job", "killed"]),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # Its ffmpeg has stitched and stopped: the step waits on it, midway.
        deadline = time.monotonic() + 300
        while "T" not in children(stitching.pid).values():
            assert stitching.poll() is None, "stitch ended before its ffmpeg was held"
            assert time.monotonic() < deadline, "stitch never reached its ffmpeg"
            time.sleep(0.05)
        stitched_in_scratch = list((tmp_path / "scratch").rglob("stitched.mp4"))
        assert len(stitched_in_scratch) == 1
        assert stitched_in_scratch[0].stat().st_size > 0
        prefix = f"{plan.prefix}/stitched"
        assert not stores.work.exists(plan.stitched_name)
        assert [f for f in work_files(stores) if f.startswith(prefix)] == []
    finally:
        os.killpg(stitching.pid, signal.SIGKILL)  # the step and its ffmpeg, no clean-up
        stitching.wait()
    assert stitching.returncode == -signal.SIGKILL

    assert not stores.work.exists(plan.stitched_name)
    assert [f for f in work_files(stores) if ".partial-" in f] == []

    cli("stitch", "--job", "killed")  # the retry, with nothing held

    stitched = stores.work.download(plan.stitched_name, tmp_path / "killed.mp4")
    twin = stores.work.download(load_plan(stores.work, "twin").stitched_name, tmp_path / "twin.mp4")
    frames = decode_rgb(stitched)
    assert frames.shape == (plan.frame_count, 48, 64, 3)
    assert frame_times(stitched) == pytest.approx(frame_times(clip), abs=1e-4)
    assert np.array_equal(frames, decode_rgb(twin))
    assert [f for f in work_files(stores) if ".partial-" in f] == []
