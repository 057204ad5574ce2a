"""Running ffmpeg/ffprobe and reading what a media file holds."""

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Any

from videostyle.errors import BadInputError, VideostyleError


class FFmpegError(VideostyleError):
    """ffmpeg failed on a file this project made itself: a fault here, not in the input."""


# What the ffmpeg/ffprobe children of this process took, CPU seconds (user + system) by kind:
# "decode" (read_frames), "encode" (FrameEncoder), "probe" (ffprobe's full decode check) and
# "other" (the rest of run_ffmpeg: listing, audio copy, remux). Each child's own rusage from
# os.wait4, so concurrent children in other threads are told apart.
_cpu_lock = threading.Lock()
_cpu: dict[str, float] = {}


def add_ffmpeg_cpu(kind: str, seconds: float) -> None:
    with _cpu_lock:
        _cpu[kind] = _cpu.get(kind, 0.0) + seconds


def ffmpeg_cpu() -> dict[str, float]:
    """CPU seconds of this process's ffmpeg children so far, by kind (see _cpu)."""
    with _cpu_lock:
        return dict(_cpu)


@contextmanager
def ffmpeg_cpu_delta() -> Iterator[dict[str, float]]:
    """Yield a dict that holds, once the block ends, the ffmpeg CPU seconds by kind that the
    block's children took (its "total" too), rounded to milliseconds."""
    result: dict[str, float] = {}
    before = ffmpeg_cpu()
    try:
        yield result
    finally:
        after = ffmpeg_cpu()
        for kind, seconds in after.items():
            result[kind] = round(seconds - before.get(kind, 0.0), 3)
        result["total"] = round(sum(after.values()) - sum(before.values()), 3)


def reap(proc: "subprocess.Popen[bytes]", *, timeout: float | None, kind: str) -> int:
    """Wait for `proc` to exit (TimeoutExpired past `timeout` s) and reap it with os.wait4, its
    CPU seconds added to the `kind` of ffmpeg_cpu(); its exit code.

    Use this instead of proc.wait()/poll(), which reap without the child's rusage.
    """
    if proc.returncode is not None:  # reaped already, its rusage lost
        return proc.returncode
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.0005
    while True:
        try:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: Popen knows its code
            return proc.wait()
        if pid:
            break
        if deadline is not None and time.monotonic() >= deadline:
            raise subprocess.TimeoutExpired(proc.args, timeout or 0.0)
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    add_ffmpeg_cpu(kind, usage.ru_utime + usage.ru_stime)
    return proc.returncode


def kill(proc: "subprocess.Popen[bytes]", *, kind: str) -> None:
    """Kill `proc` if it still runs, and reap it (its CPU counted as `kind`)."""
    if proc.returncode is None:
        # Not proc.kill(): it polls first, reaping an exited child without its rusage. Unreaped,
        # the pid is still this child's.
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        reap(proc, timeout=None, kind=kind)


def run_ffmpeg(argv: list[str], *, timeout: float, kind: str = "other") -> bytes:
    """Run an ffmpeg/ffprobe argv to completion; its stderr is in the error when it fails. Its
    CPU time counts as `kind` in ffmpeg_cpu()."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
        try:
            returncode = reap(proc, timeout=timeout, kind=kind)
        except subprocess.TimeoutExpired as exc:
            kill(proc, kind=kind)
            raise FFmpegError(f"{argv[0]} ran past {timeout:.0f} s: {' '.join(argv)}") from exc
        except BaseException:
            kill(proc, kind=kind)
            raise
        if returncode != 0:
            stderr.seek(0)
            message = stderr.read().decode(errors="replace").strip()
            raise FFmpegError(f"{argv[0]} exited {returncode}: {message[-2000:]}")
        stdout.seek(0)
        return stdout.read()


def side_by_side(left: Path, right: Path, png: Path, *, at_s: float, timeout: float) -> Path:
    """One PNG: the frame of `left` shown at `at_s` (seconds from its start), beside `right`'s.

    Both sides go through RGB first: hstack needs one pixel format, and a source need not be
    in the output's yuv420p.
    """
    at = f"{at_s:.6f}"
    run_ffmpeg(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-ss",
            at,
            "-i",
            str(left),
            "-ss",
            at,
            "-i",
            str(right),
            "-filter_complex",
            "[0:v:0]format=rgb24[l];[1:v:0]format=rgb24[r];[l][r]hstack=inputs=2",
            "-frames:v",
            "1",
            str(png),
        ],
        timeout=timeout,
    )
    if not png.exists():  # ffmpeg exits 0 when the seek leaves no frame to write
        raise FFmpegError(f"no frame at {at} s in {left.name} and {right.name}")
    return png


# ffprobe's field_order of interlaced video: top or bottom field first (coded and displayed).
INTERLACED_FIELD_ORDERS = frozenset({"tt", "bb", "tb", "bt"})


@dataclass(frozen=True)
class MediaInfo:
    """The facts of a video that the pipeline plans with; timestamps in seconds."""

    width: int
    height: int
    frame_pts: tuple[int, ...]  # presentation time of every frame, in display order, in ticks
    time_base: Fraction  # of this
    frame_rate: Fraction
    constant_frame_rate: bool
    audio_streams: int
    audio_codecs: tuple[str, ...]  # ffprobe's codec_name of each audio stream
    duration_s: float
    pix_fmt: str  # ffprobe's name of the stream's pixel format, "" when it gives none
    field_order: str  # ffprobe's: "progressive", "tt", "bb", "tb", "bt", or "" (unknown)
    rotation: int  # degrees the display matrix turns the picture; decoders apply it
    audio_start_s: float = 0.0  # when the first audio stream starts, on the video's clock

    @property
    def interlaced(self) -> bool:
        return self.field_order in INTERLACED_FIELD_ORDERS

    @property
    def frame_count(self) -> int:
        return len(self.frame_pts)

    @cached_property
    def frame_times(self) -> tuple[float, ...]:
        """Every frame's presentation time in seconds."""
        return tuple(float(p * self.time_base) for p in self.frame_pts)

    @property
    def start_s(self) -> float:
        return self.frame_times[0]


def probe(path: Path, *, timeout: float, decode: bool = True) -> MediaInfo:
    """Stream facts and every frame's timestamp, after a full decode proves every frame readable
    (`decode` False skips that: for a video this project wrote itself).

    Any failure here is the input's: ffmpeg reads a local copy, so nothing transient is left.
    """
    try:
        return _probe(path, timeout=timeout, decode=decode)
    except FFmpegError as exc:
        raise BadInputError(f"{path.name} is not a readable video: {exc}") from exc


def _probe(path: Path, *, timeout: float, decode: bool) -> MediaInfo:
    listing = ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json"]
    found = json.loads(run_ffmpeg([*listing, str(path)], timeout=timeout))
    streams = found.get("streams", [])
    video = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
    ]
    if not video:
        raise BadInputError(f"{path.name} has no video stream")
    stream = video[0]
    time_base = Fraction(stream["time_base"])
    pts = _frame_pts(path, stream["index"], timeout=timeout)
    if not pts:
        raise BadInputError(f"{path.name} has a video stream with no frames")
    indexed = int(stream.get("nb_frames", 0) or 0)
    if indexed > len(pts):
        raise BadInputError(
            f"{path.name} is truncated: its index lists {indexed} frames, {len(pts)} are present"
        )
    decoded = _decodable_frames(path, stream["index"], timeout=timeout) if decode else len(pts)
    if decoded != len(pts):
        raise BadInputError(
            f"{path.name} is corrupt or truncated: {decoded} of its {len(pts)} frames decode"
        )
    steps = {b - a for a, b in pairwise(pts)}
    if len(steps) == 1:
        frame_rate = 1 / (next(iter(steps)) * time_base)
    else:  # one frame, or timing rounded to the container's clock: the container's own rate
        frame_rate = Fraction(stream.get("avg_frame_rate", "0/1")) or Fraction(
            stream.get("r_frame_rate", "25/1")
        )
    width, height = int(stream["width"]), int(stream["height"])
    rotation = _rotation(stream)
    if rotation % 180:  # decoders turn the frames upright: their size swaps
        width, height = height, width
    return MediaInfo(
        width=width,
        height=height,
        frame_pts=tuple(pts),
        time_base=time_base,
        frame_rate=frame_rate,
        # Steps one clock tick apart are a constant rate the container could not express
        # exactly (24 fps in milliseconds: 41, 42, 42 ms); more than that is a variable rate.
        constant_frame_rate=max(steps, default=0) - min(steps, default=0) <= 1,
        audio_streams=sum(s.get("codec_type") == "audio" for s in streams),
        audio_codecs=tuple(
            s.get("codec_name", "") for s in streams if s.get("codec_type") == "audio"
        ),
        duration_s=float(found.get("format", {}).get("duration", 0.0)),
        pix_fmt=str(stream.get("pix_fmt", "")),
        field_order=str(stream.get("field_order", "")),
        rotation=rotation,
        audio_start_s=next(
            (float(s.get("start_time", 0.0)) for s in streams if s.get("codec_type") == "audio"),
            0.0,
        ),
    )


def _frame_pts(path: Path, index: int, *, timeout: float) -> list[int]:
    """Every frame's presentation timestamp, in display order, by demuxing (no decode)."""
    entries = ["-show_entries", "packet=pts", "-of", "csv=p=0"]
    out = run_ffmpeg(
        ["ffprobe", "-v", "error", "-select_streams", str(index), *entries, str(path)],
        timeout=timeout,
    )
    # A packet with side data (MPEG-TS's stream id) prints as "133508,": the pts is its first field.
    values = (line.split(",")[0] for line in out.decode().split())
    return sorted(int(v) for v in values if v.lstrip("-").isdigit())


def _rotation(stream: dict[str, Any]) -> int:
    """Degrees the display matrix turns the picture (what phones record instead of rotating)."""
    for side_data in stream.get("side_data_list", []):
        if "rotation" in side_data:
            return int(side_data["rotation"])
    return int(stream.get("tags", {}).get("rotate", 0))


def _decodable_frames(path: Path, index: int, *, timeout: float) -> int:
    """Frames that actually decode: fewer than the packets means damage a probe cannot see."""
    out = run_ffmpeg(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            str(index),
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            str(path),
        ],
        timeout=timeout,
        kind="probe",
    )
    # MPEG-TS lists the stream again under its program: the first line is the stream's own.
    count = next(iter(out.decode().split()), "").rstrip(",")
    return int(count) if count.isdigit() else 0  # N/A: nothing decoded
