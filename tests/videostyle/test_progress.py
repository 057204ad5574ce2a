"""Progress lines: a rank's, at most every interval, and the whole job's summed from them; the
clocks are fakes, moved by hand."""

import logging
import time
from itertools import pairwise

import pytest

from videostyle.progress import (
    DEFAULT_INTERVAL_S,
    JOB_LINE,
    RANK_LINE,
    JobProgress,
    Progress,
    RankProgress,
    parse_progress,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def rank_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "videostyle.progress"]


def test_the_default_interval_keeps_lines_under_ten_seconds_apart() -> None:
    assert 0 < DEFAULT_INTERVAL_S <= 5  # a line follows the batch crossing it: +1 batch < 10 s


def test_a_rank_logs_at_start_every_interval_and_at_the_end(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="videostyle.progress")
    progress = RankProgress(rank=1, size=2, total=132, interval=10, clock=clock)
    progress.start()
    logged_at = [clock.now]
    for _ in range(40):  # one frame every 0.5 s: 2 frames/s
        clock.now += 0.5
        progress.advance(1)
        if len(rank_lines(caplog)) > len(logged_at):
            logged_at.append(clock.now)
    progress.finish()

    lines = rank_lines(caplog)
    assert lines[0] == "progress rank 1/2: 0/132 frames (0%), 0.0 frames/s, ETA unknown"
    # 20 s of styling: a line at 10 s and one at 20 s, none more often.
    assert lines[1] == "progress rank 1/2: 20/132 frames (15%), 2.0 frames/s, ETA 56 s"
    assert lines[2] == "progress rank 1/2: 40/132 frames (30%), 2.0 frames/s, ETA 46 s"
    assert logged_at == [1000.0, 1010.0, 1020.0]
    assert lines[3] == lines[2]  # the end, whatever the interval
    assert len(lines) == 4


def test_skipped_frames_count_as_done_but_not_in_the_rate(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="videostyle.progress")
    progress = RankProgress(rank=0, size=1, total=100, done=60, interval=5, clock=clock)
    progress.start()
    clock.now += 10
    progress.advance(20)  # 20 frames in 10 s; the 60 skipped took no time
    assert progress.progress == Progress(done=80, total=100, rate=2.0, eta_s=10.0)
    clock.now += 10
    progress.advance(20)
    progress.finish()
    assert rank_lines(caplog) == [
        "progress rank 0/1: 60/100 frames (60%), 0.0 frames/s, ETA unknown",
        "progress rank 0/1: 80/100 frames (80%), 2.0 frames/s, ETA 10 s",
        "progress rank 0/1: 100/100 frames (100%), 2.0 frames/s, ETA 0 s",
        "progress rank 0/1: 100/100 frames (100%), 2.0 frames/s, ETA 0 s",
    ]


def test_a_rank_with_everything_done_says_so_at_once(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="videostyle.progress")
    RankProgress(rank=3, size=4, total=50, done=50, clock=clock).finish()
    assert rank_lines(caplog) == ["progress rank 3/4: 50/50 frames (100%), 0.0 frames/s, ETA 0 s"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "progress rank 1/2: 40/132 frames (30%), 3.1 frames/s, ETA 29 s",
            (1, 2, Progress(done=40, total=132, rate=3.1, eta_s=29.0)),
        ),
        (  # as the CLI's logging writes it, under mpirun
            "2026-01-01 10:00:00,123 videostyle.progress INFO progress rank 0/4: "
            "0/12 frames (0%), 0.0 frames/s, ETA unknown",
            (0, 4, Progress(done=0, total=12, rate=0.0, eta_s=None)),
        ),
    ],
)
def test_rank_lines_parse_back(line: str, expected: tuple[int, int, Progress]) -> None:
    match = RANK_LINE.search(line)
    assert match is not None
    assert (int(match["rank"]), int(match["size"]), parse_progress(match)) == expected


def rank_line(rank: int, done: int, total: int, rate: float, eta: int | None) -> str:
    eta_text = "unknown" if eta is None else f"{eta} s"
    return (
        f"2026-01-01 10:00:00,000 videostyle.progress INFO progress rank {rank}/2: "
        f"{done}/{total} frames ({100 * done // total}%), {rate:.1f} frames/s, ETA {eta_text}"
    )


def test_the_job_line_sums_the_ranks_once_all_have_reported(clock: FakeClock) -> None:
    job = JobProgress(interval=10, clock=clock)
    assert job.feed("2026-01-01 10:00:00,000 videostyle.steps.score INFO unit 3 done") is None
    assert job.feed(rank_line(0, 0, 132, 0.0, None)) is None  # rank 1 not heard from yet
    line = job.feed(rank_line(1, 0, 132, 0.0, None))
    assert line == "progress job: 0/264 frames (0%), 0.0 frames/s, ETA unknown"

    clock.now += 10
    line = job.feed(rank_line(0, 40, 132, 3.1, 29))
    assert line == "progress job: 40/264 frames (15%), 3.1 frames/s, ETA unknown"  # rank 1's
    assert job.feed(rank_line(1, 40, 132, 3.1, 29)) is None  # within the interval
    clock.now += 10
    line = job.feed(rank_line(0, 72, 132, 3.2, 19))
    # rank 1's ETA, 29 s when seen 10 s ago, is now 19 s: the slowest rank finishes the job
    assert line == "progress job: 112/264 frames (42%), 6.3 frames/s, ETA 19 s"
    assert line is not None
    match = JOB_LINE.search(line)
    assert match is not None
    assert parse_progress(match) == Progress(done=112, total=264, rate=6.3, eta_s=19.0)


def test_job_lines_come_at_most_every_interval_but_the_last_always(clock: FakeClock) -> None:
    job = JobProgress(interval=10, clock=clock)
    emitted: list[tuple[float, str]] = []
    for step in range(1, 133):  # each rank styles a frame every 0.25 s, reporting each
        clock.now += 0.25
        for rank in (0, 1):
            left = (132 - step) // 4
            line = job.feed(rank_line(rank, step, 132, 4.0, left))
            if line is not None:
                emitted.append((clock.now, line))

    times = [at for at, _ in emitted]
    gaps = [b - a for a, b in pairwise(times)]
    assert all(gap >= 10 for gap in gaps[:-1])
    assert emitted[0] == (1000.25, "progress job: 2/264 frames (0%), 8.0 frames/s, ETA 32 s")
    assert emitted[-1] == (1033.0, "progress job: 264/264 frames (100%), 8.0 frames/s, ETA 0 s")
    assert len(emitted) == 5  # at 0.25, 10.25, 20.25, 30.25 s, and the end at 33 s
    assert job.feed(rank_line(0, 132, 132, 4.0, 0)) is None  # the end is said once


def test_lines_that_are_not_a_ranks_progress_are_ignored(clock: FakeClock) -> None:
    job = JobProgress(clock=clock)
    for line in (
        "progress job: 1/2 frames (50%), 1.0 frames/s, ETA 1 s",  # not a rank's
        "progress rank 2/2: 1/2 frames (50%), 1.0 frames/s, ETA 1 s",  # no such rank
        "progress rank 0/1: 1/2 frames (50%), fast, ETA soon",
    ):
        assert job.feed(line) is None
    assert job.progress == Progress(done=0, total=0, rate=0.0, eta_s=0.0)


def test_progress_reads_as_frames_percent_rate_and_whole_seconds_left() -> None:
    assert Progress(done=1, total=3, rate=0.5, eta_s=3.2).describe() == (
        "1/3 frames (33%), 0.5 frames/s, ETA 4 s"
    )


def test_a_rank_notes_when_its_first_frame_came_out_on_the_wall_clock() -> None:
    progress = RankProgress(rank=0, size=1, total=3)
    progress.start()
    progress.advance(0)
    assert progress.first_styled_at is None
    before = time.time()
    progress.advance(1)
    after = time.time()
    assert progress.first_styled_at is not None
    assert before <= progress.first_styled_at <= after
    progress.advance(2)
    assert progress.first_styled_at <= after
