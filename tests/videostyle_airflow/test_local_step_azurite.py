"""The local launcher running the real CLI against Azurite: scoring's progress reaches the task
log while the ranks work, and a failed step's reason ends the log and lands in XCom."""

import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from tests.videostyle_airflow.operator_doubles import RecordedLog, TaskInstance
from videostyle.defaults import BUILTIN_MODEL
from videostyle.plan import load_plan
from videostyle.progress import JOB_LINE, RANK_LINE, parse_progress
from videostyle.settings import Settings
from videostyle.steps.preprocess import preprocess, quarantine_name
from videostyle.storage import Stores
from videostyle_airflow.local_step import LocalStepOperator

RANKS = 2


@pytest.fixture
def stores(blob_connection: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stores:
    """Azurite's fresh containers, behind the `videostyle_blob` connection too."""
    monkeypatch.setenv("VIDEOSTYLE_SCRATCH_DIR", str(tmp_path / "scratch"))
    return Stores(Settings())


def test_scoring_logs_each_ranks_progress_and_the_jobs_while_it_runs(
    stores: Stores, sample_clip: Path, task_log: RecordedLog
) -> None:
    stores.inputs.upload(sample_clip, "clip.mp4")
    plan = preprocess(
        stores,
        Settings(max_unit_frames=9),
        video="clip.mp4",
        job_id="job-progress",
        model=BUILTIN_MODEL,
        options={"style": "scream", "strength": 1.0},
        crf=16,
        ranks=RANKS,
    )
    op = LocalStepOperator(
        task_id="score", step="score", args=["--job", "job-progress"], ranks=RANKS
    )
    op.execute(context={"ti": TaskInstance()})  # type: ignore[typeddict-item]  # the TI double lacks the Protocol's static methods

    ranks: dict[int, list[tuple[float, Any]]] = {0: [], 1: []}
    jobs = []
    for at, line in task_log.lines:
        if match := RANK_LINE.search(line):
            assert match["size"] == str(RANKS)
            ranks[int(match["rank"])].append((at, parse_progress(match)))
        elif match := JOB_LINE.search(line):
            jobs.append((at, parse_progress(match)))

    timings = json.loads(stores.work.read_bytes(plan.timing_name("score")))
    shares = []
    for rank, lines in ranks.items():
        (start_at, start), *_, (end_at, end) = lines
        assert (start.done, start.rate, start.eta_s) == (0, 0.0, None)
        assert (end.done, end.eta_s) == (end.total, 0.0)
        assert end.rate > 0
        shares.append(end.total)
        # Each line reached the task log as the rank wrote it, not when mpirun ended: the
        # start and end lines arrived as far apart as the rank styled.
        styled_s = next(r for r in timings["ranks"] if r["rank"] == rank)["stream_seconds"]
        assert styled_s > 0.5
        assert end_at - start_at > styled_s / 2
    assert sorted(shares) == [25, 25]
    assert len(jobs) >= 2
    first_at, first = jobs[0]
    last_at, last = jobs[-1]
    assert first.total == last.total == load_plan(stores.work, "job-progress").frame_count == 50
    assert (last.done, last.eta_s) == (50, 0.0)
    assert last.rate > 0
    assert last_at - first_at > min(r["stream_seconds"] for r in timings["ranks"]) / 2


@pytest.mark.parametrize(
    ("style", "reason", "quarantined"),
    [
        ("scream", "'clip.mp4' is not a readable video: ", True),
        ("mona-lisa", "bad parameter style='mona-lisa': unknown style 'mona-lisa'; known:", False),
    ],
    ids=["bad-video", "bad-parameter"],
)
def test_a_failed_preprocess_ends_its_log_with_the_reason_and_pushes_it_to_xcom(
    stores: Stores,
    tmp_path: Path,
    task_log: RecordedLog,
    style: str,
    reason: str,
    quarantined: bool,
) -> None:
    not_a_video = tmp_path / "clip.mp4"
    not_a_video.write_text("This is a shopping list, not a video.\n" * 50)
    stores.inputs.upload(not_a_video, "clip.mp4")
    ti = TaskInstance()
    op = LocalStepOperator(
        task_id="preprocess",
        step="preprocess",
        args=["clip.mp4", "--job", "job-bad", "--style", style],
    )
    with pytest.raises(AirflowFailException) as failure:
        op.execute(context={"ti": ti})  # type: ignore[typeddict-item]  # the TI double lacks the Protocol's static methods

    said = ti.xcoms["failure"]
    assert said.startswith(reason)
    assert str(failure.value) == f"preprocess failed: {said}"
    _, last_line = task_log.lines[-1]
    assert last_line.endswith(f" videostyle ERROR preprocess failed: {said}")
    if quarantined:
        report = json.loads(stores.work.read_bytes(quarantine_name("job-bad")))
        assert said == " | ".join(report["problem"].splitlines())  # ffprobe's, on one line
    else:
        assert not stores.work.exists(quarantine_name("job-bad"))
