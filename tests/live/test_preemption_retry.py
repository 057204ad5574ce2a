"""A node lost mid-scoring, on the live service: a rank of the process DAG's real `mpirun` score
task is killed, Airflow itself retries the task, and the retry redoes only the lost units, to a
video identical, frame for frame, to an uninterrupted run of the same clip.

The same bytes are uploaded under two names (their outputs do not collide); the watch starts a
run for each, one at a time. The kill is not raced against the scoring: once the first unit of
the preempted run's job exists, every process of its MPI world is stopped (SIGSTOP), the units
done are counted, its rank 1 is killed and the rest continued (see tests/videostyle/
test_preemption.py). The service was started by this test session: its task processes, and so
the ranks, descend from this process, and are told apart from any other run's by the job id in
their argv and by their PMI rank.
"""

import json
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from azure.storage.blob import BlobServiceClient

from tests.live.api import AirflowApi
from tests.media import decode_rgb, make_clip
from tests.processes import (
    Process,
    alive,
    argv,
    descendants,
    freeze,
    kill_all,
    process,
    scoring_rank,
    thaw,
    tree,
    wait_until,
    world_ranks,
)
from videostyle.defaults import DEFAULT_RANKS, DEFAULT_STYLE
from videostyle.settings import Settings
from videostyle_airflow.config import PROCESS_DAG_ID
from videostyle_airflow.ids import job_id_for_run

RUN_TIMEOUT_S = 900
WORLD_END_S = 120
# The live service keeps the default unit size: 480 frames over 2 ranks are 10 units of 48,
# 5 a rank, at 64x36 pixels (about half a second each), so a kill after the first unit loses
# several. What the watch starts scores on the DAG's default ranks, 2.
UNITS = 10
CLIP_FRAMES = 2 * 5 * Settings.model_fields["max_unit_frames"].default
KILLED, STRAIGHT = "preemption/killed.mp4", "preemption/straight.mp4"


def _run_of(api: AirflowApi, video: str) -> dict[str, Any]:
    runs = [r for r in api.runs(PROCESS_DAG_ID) if (r.get("conf") or {}).get("video") == video]
    assert len(runs) <= 1, runs
    return runs[0] if runs else {}


def _units_done(blob_service: BlobServiceClient, job: str) -> int:
    work = blob_service.get_container_client("videos-work")
    return sum(
        b.name.endswith(".mp4") for b in work.list_blobs(name_starts_with=f"jobs/{job}/units/")
    )


def _mpirun_of(job: str) -> Process | None:
    """The mpirun scoring `job`, among this test session's descendants (the live service's)."""
    for pid in descendants(os.getpid()):
        proc = process(pid)
        if proc is None:
            continue
        line = argv(proc)
        if line and Path(line[0]).name == "mpirun" and "--job" in line and job in line:
            return proc
    return None


def _wait_for_mpirun(job: str) -> Process:
    found: list[Process] = []

    def seen() -> bool:
        if (proc := _mpirun_of(job)) is not None:
            found.append(proc)
        return bool(found)

    wait_until(seen, f"the score task's mpirun for job {job}", timeout_s=RUN_TIMEOUT_S)
    return found[0]


def _output(blob_service: BlobServiceClient, video: str, tmp_path: Path) -> np.ndarray:
    blob = blob_service.get_blob_client("videos-out", f"{video}/{DEFAULT_STYLE}.mp4")
    path = tmp_path / f"{Path(video).stem}.mp4"
    path.write_bytes(blob.download_blob().readall())
    return decode_rgb(path)


@pytest.mark.integration
def test_a_killed_rank_is_retried_by_airflow_to_an_identical_video(
    api: AirflowApi, blob_service: BlobServiceClient, tmp_path: Path
) -> None:
    assert DEFAULT_RANKS == 2
    clip = make_clip(
        tmp_path / "clip.mp4", frames=CLIP_FRAMES, audio=False, size=(64, 36)
    ).read_bytes()
    for name in (STRAIGHT, KILLED):  # the same content, twice
        blob_service.get_blob_client("videos-in", name).upload_blob(clip, overwrite=True)

    wait_until(lambda: _run_of(api, KILLED), f"a run for {KILLED}", timeout_s=RUN_TIMEOUT_S)
    run_id = _run_of(api, KILLED)["dag_run_id"]
    job = job_id_for_run(run_id)

    root = _wait_for_mpirun(job)  # once any run before it is done: one run at a time
    world: list[Process] = []
    try:
        wait_until(
            lambda: _units_done(blob_service, job) or not alive(root),
            "the first unit",
            timeout_s=RUN_TIMEOUT_S,
        )
        assert alive(root), "scoring ended before its first unit was seen"
        world = freeze(root.pid)
        done_when_stopped = _units_done(blob_service, job)
        assert 1 <= done_when_stopped < UNITS, "no unit left to lose"
        assert world_ranks(world, job) == [0, 1]
        victim = scoring_rank(world, 1, job)
        assert victim.pid != root.pid
        os.kill(victim.pid, signal.SIGKILL)  # a preempted node: no clean shutdown
        thaw(p for p in world if p != victim)
        wait_until(
            lambda: not [p for p in world if alive(p)],
            lambda: f"the world's end: left {[argv(p) for p in world if alive(p)]}",
            timeout_s=WORLD_END_S,
        )
    except BaseException:
        kill_all([*world, *tree(root.pid)])
        raise
    # The retry waits its retry_delay (15 s) after the failure: nothing writes units now.
    done_before_retry = _units_done(blob_service, job)
    assert done_when_stopped <= done_before_retry < UNITS

    killed = api.wait_for_run(PROCESS_DAG_ID, run_id, timeout_s=RUN_TIMEOUT_S)
    assert killed["state"] == "success"
    score = api.task_instances(PROCESS_DAG_ID, run_id)["score"]
    assert (score["state"], score["try_number"]) == ("success", 2)
    tries = api.tries(PROCESS_DAG_ID, run_id, "score")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    failures = [
        str(e["error_detail"][0]["exc_value"])
        for e in api.log_entries(PROCESS_DAG_ID, run_id, "score", 1)
        if e.get("error_detail")
    ]
    assert [f.split(":")[0] for f in failures] == ["score failed with exit code 9"], failures

    work = blob_service.get_container_client("videos-work")
    timing = json.loads(work.download_blob(f"jobs/{job}/timings/score.json").readall())
    assert sum(r["skipped"] for r in timing["ranks"]) == done_before_retry  # only lost work
    assert sum(r["scored"] for r in timing["ranks"]) == UNITS - done_before_retry

    straight_run = _run_of(api, STRAIGHT)
    assert straight_run, f"no run for {STRAIGHT}"
    straight = api.wait_for_run(PROCESS_DAG_ID, straight_run["dag_run_id"], timeout_s=RUN_TIMEOUT_S)
    assert straight["state"] == "success"
    assert api.task_instances(PROCESS_DAG_ID, straight["dag_run_id"])["score"]["try_number"] == 1
    resumed, uninterrupted = (_output(blob_service, v, tmp_path) for v in (KILLED, STRAIGHT))
    assert resumed.shape == (CLIP_FRAMES, 36, 64, 3)
    assert np.array_equal(resumed, uninterrupted)
