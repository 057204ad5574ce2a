"""Scoring progress as log lines a person can read and a launcher can parse.

Each rank logs `progress rank 1/2: 40/132 frames (30%), 3.1 frames/s, ETA 29 s` (`ETA unknown`
until it has styled a frame) when it starts styling, at most every `interval` seconds while it
styles, and when it ends. `JobProgress` reads those lines back from any stream (a local
mpirun's output, a launcher pod's log) and sums them into
`progress job: 80/264 frames (30%), 6.2 frames/s, ETA 29 s`, so every launcher reports alike.
"""

import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# A line goes out after the batch that crosses the interval: at 5 s, a person sees one at least
# every 10 s as long as a batch takes under 5 s.
DEFAULT_INTERVAL_S = 5.0

RANK_LINE = re.compile(
    r"progress rank (?P<rank>\d+)/(?P<size>\d+): (?P<done>\d+)/(?P<total>\d+) frames "
    r"\(\d+%\), (?P<rate>\d+(?:\.\d+)?) frames/s, ETA (?:(?P<eta>\d+) s|unknown)"
)
JOB_LINE = re.compile(
    r"progress job: (?P<done>\d+)/(?P<total>\d+) frames "
    r"\(\d+%\), (?P<rate>\d+(?:\.\d+)?) frames/s, ETA (?:(?P<eta>\d+) s|unknown)"
)

Clock = Callable[[], float]


@dataclass(frozen=True)
class Progress:
    """Frames done of a total, the styling rate, and the seconds left (None: not known yet)."""

    done: int
    total: int
    rate: float
    eta_s: float | None

    def describe(self) -> str:
        percent = 100 * self.done // self.total if self.total else 100
        eta = "unknown" if self.eta_s is None else f"{math.ceil(self.eta_s)} s"
        return f"{self.done}/{self.total} frames ({percent}%), {self.rate:.1f} frames/s, ETA {eta}"


class RankProgress:
    """
    One rank's progress, logged at its start, at most every `interval` seconds, and at its end.

    Frames already done before this run (skipped units) count as done, not in the rate.

    :param rank: this rank.
    :param size: the number of ranks.
    :param total: the frames of this rank's share.
    :param done: of those, the frames already done.
    :param interval: the least seconds between two lines while styling.
    :param clock: monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        *,
        rank: int,
        size: int,
        total: int,
        done: int = 0,
        interval: float = DEFAULT_INTERVAL_S,
        clock: Clock = time.monotonic,
    ) -> None:
        self.rank = rank
        self.size = size
        self.total = total
        self.skipped = done
        self.interval = interval
        self._clock = clock
        self._styled = 0
        self._started: float | None = None
        self._logged = 0.0
        # When the first frame came out, on the wall clock (seconds since the epoch): what a
        # command's fixed cost is measured to, across processes.
        self.first_styled_at: float | None = None

    @property
    def progress(self) -> Progress:
        done = self.skipped + self._styled
        elapsed = self._clock() - self._started if self._started is not None else 0.0
        rate = self._styled / elapsed if elapsed > 0 else 0.0
        left = self.total - done
        eta = 0.0 if left <= 0 else left / rate if rate > 0 else None
        return Progress(done=done, total=self.total, rate=rate, eta_s=eta)

    def start(self) -> None:
        """Styling starts now: the rate counts from here."""
        self._started = self._clock()
        self._log()

    def advance(self, frames: int) -> None:
        """`frames` more are styled; log if the last line is `interval` old."""
        if self.first_styled_at is None and frames:
            self.first_styled_at = time.time()
        self._styled += frames
        if self._clock() - self._logged >= self.interval:
            self._log()

    def finish(self) -> None:
        self._log()

    def _log(self) -> None:
        self._logged = self._clock()
        log.info("progress rank %d/%d: %s", self.rank, self.size, self.progress.describe())


class JobProgress:
    """
    The whole job's progress, summed from the ranks' progress lines.

    `feed` every line of the ranks' output; it returns a job line once every rank has reported,
    at most every `interval` seconds, and always the one saying the job is done. Frames and
    rates add up; the job's ETA is its slowest rank's, counted down since that rank's line.

    :param interval: the least seconds between two job lines (the last one excepted).
    :param clock: monotonic seconds (tests pass a fake).
    """

    def __init__(self, *, interval: float = DEFAULT_INTERVAL_S, clock: Clock = time.monotonic):
        self.interval = interval
        self._clock = clock
        self._ranks: dict[int, tuple[Progress, float]] = {}  # rank: its last line, when seen
        self._size = 0
        self._logged: float | None = None
        self._ended = False

    def feed(self, line: str) -> str | None:
        """The job's progress line, when `line` is a rank's and a job line is due."""
        match = RANK_LINE.search(line)
        if match is None:
            return None
        rank, size = int(match["rank"]), int(match["size"])
        if rank >= size:
            return None
        now = self._clock()
        self._size = size
        self._ranks[rank] = (parse_progress(match), now)
        if len(self._ranks) < self._size or self._ended:
            return None
        job = self.progress
        self._ended = job.done >= job.total
        if not self._ended and self._logged is not None and now - self._logged < self.interval:
            return None
        self._logged = now
        return f"progress job: {job.describe()}"

    @property
    def progress(self) -> Progress:
        now = self._clock()
        ranks = [progress for progress, _ in self._ranks.values()]
        left = max(
            (
                math.inf if p.eta_s is None else p.eta_s - (now - seen)
                for p, seen in self._ranks.values()
            ),
            default=0.0,
        )
        return Progress(
            done=sum(p.done for p in ranks),
            total=sum(p.total for p in ranks),
            rate=sum(p.rate for p in ranks),
            eta_s=None if math.isinf(left) else max(0.0, left),
        )


def parse_progress(match: re.Match[str]) -> Progress:
    """The figures of a RANK_LINE or JOB_LINE match."""
    eta = match["eta"]
    return Progress(
        done=int(match["done"]),
        total=int(match["total"]),
        rate=float(match["rate"]),
        eta_s=None if eta is None else float(eta),
    )
