"""Raw RGB frames streamed out of and into ffmpeg through pipes: no image files, bounded memory.

Decoding and encoding run beside the model, each in a thread of its own behind a small bounded
queue: ffmpeg decodes the next frames and x264 encodes the last ones while the model works on
the current batch, and memory stays a few batches whatever the length of the video.
"""

import contextlib
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import IO, NamedTuple, Self, TypeVar, cast

import ffmpeg
import numpy as np
import numpy.typing as npt

from videostyle.media.ffmpeg import FFmpegError, kill, reap

Frames = npt.NDArray[np.uint8]  # [N, H, W, 3] RGB
T = TypeVar("T")

# x264 preset of every encode, with defaults.DEFAULT_CRF: chosen by bench/encode.py (its rule:
# the least encode CPU whose PSNR and SSIM, against the styled frames in 4:2:0, stay within
# 0.2 dB and 0.001 of the former default, fast at CRF 16, on each of two real clips, at most
# 1.25x its size). One thread, per frame, units as scored (BBB 640x360 and bikes, styled):
# fast crf16 26 ms; veryfast crf13 12-14 ms, +0.46 dB, 1.20x; superfast crf11 10.2 ms,
# +0.30 dB but 1.41x; ultrafast crf13 4.9 ms, +1.5 dB but 1.72x; ultrafast crf16 4.8 ms,
# -1.5 dB on bikes; superfast crf13 -1.5 dB. At a given CRF the faster presets lose quality,
# not just size: the CRF is lowered with the preset.
X264_PRESET = "veryfast"
# Batches a stage may hold ahead of the next: enough to smooth out uneven stage times.
QUEUE_DEPTH = 2
# Decoding starts at the keyframe before a seek point this far ahead of the first frame wanted,
# so demuxers that seek by DTS land before it.
SEEK_MARGIN_S = 1.0


class TimeRange(NamedTuple):
    """Where read_frames finds a run of frames: seek point and [start_s, end_s) of their times."""

    seek_s: float  # from the file's start time, as ffmpeg's -ss counts
    start_s: float
    end_s: float | None  # None: to the end


def time_range(times: Sequence[float], first: int, stop: int) -> TimeRange:
    """The frames `first` to `stop` (exclusive) of a video whose frame times are `times`, cut
    halfway between two frames: exact whatever the GOP layout."""
    return TimeRange(
        # ffmpeg's -ss counts from the file's start time, at or before the first frame's (MPEG-TS
        # starts at 1.4 s): from there, this lands at least the margin early.
        seek_s=max(0.0, times[first] - times[0] - SEEK_MARGIN_S),
        start_s=(times[first - 1] + times[first]) / 2 if first else times[0] - SEEK_MARGIN_S,
        end_s=(times[stop - 1] + times[stop]) / 2 if stop < len(times) else None,
    )


def _stderr_tail(stderr: IO[bytes]) -> str:
    stderr.seek(0)
    return stderr.read().decode(errors="replace").strip()[-2000:]


def read_frames(
    path: Path,
    *,
    width: int,
    height: int,
    seek_s: float,
    start_s: float,
    end_s: float | None,
    count: int,
    batch: int,
    threads: int,
    timeout: float,
    deinterlace: bool = False,
) -> Iterator[Frames]:
    """Yield batches of the `count` frames whose timestamps lie in [start_s, end_s).

    Decoding starts at the keyframe before `seek_s` and keeps the source's timestamps (-copyts),
    so the select filter picks frames by their own time: exact, whatever the GOP layout.
    `deinterlace` puts every frame through bwdif first, one frame per frame at its own time;
    before the selection, so that a unit's first and last frames have their neighbours' fields.
    """
    select = f"gte(t,{start_s!r})" + ("" if end_s is None else f"*lt(t,{end_s!r})")
    video = ffmpeg.input(
        str(path), ss=repr(seek_s), noaccurate_seek=None, copyts=None, threads=threads
    ).video
    if deinterlace:
        video = video.filter("bwdif", mode="send_frame", parity="auto", deint="all")
    if end_s is not None:
        # The first frame at or past the end ends the stream, and ffmpeg stops decoding there:
        # the select filter alone drops the rest but decodes it all, to the end of the file
        # (every unit's decoder would read the rest of the video).
        video = video.filter("trim", end=repr(end_s))
    argv = (
        video.filter("select", select)
        .output("pipe:", format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough")
        .global_args("-nostdin", "-v", "error")
        .compile()
    )
    frame_bytes = width * height * 3
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
        )
        assert proc.stdout is not None
        try:
            done = 0
            while done < count:
                frames = np.empty((min(batch, count - done), height, width, 3), np.uint8)
                got = _read_into(proc.stdout, frames.data.cast("B")) // frame_bytes
                if got:
                    yield frames[:got]
                    done += got
                if got < len(frames):
                    break
            extra = proc.stdout.read(frame_bytes)
            proc.stdout.close()
            returncode = reap(proc, timeout=timeout, kind="decode")
        finally:
            kill(proc, kind="decode")  # the consumer stopped early, or reading failed
            proc.stdout.close()
        if returncode != 0:
            raise FFmpegError(f"decoding {path.name} failed: {_stderr_tail(stderr)}")
        if done != count or extra:
            raise FFmpegError(
                f"decoding {path.name} from {start_s:.3f}s gave "
                f"{done + (1 if extra else 0)}{'+' if extra else ''} frames, expected {count}"
            )


def _read_into(pipe: IO[bytes], buffer: memoryview) -> int:
    """Fill `buffer` from the pipe; fewer bytes only at end of stream."""
    filled = 0
    while filled < len(buffer):
        n = pipe.readinto(buffer[filled:])  # type: ignore[attr-defined]
        if not n:
            break
        filled += n
    return filled


def read_ahead(
    items: Iterable[T], *, depth: int = QUEUE_DEPTH, stop_s: float = 30.0
) -> Generator[T, None, None]:
    """Iterate `items` in a thread of its own, at most `depth` items ahead of the consumer.

    An exception in `items` is raised to the consumer. A consumer that stops early stops the
    producer after its current item (closing `items`, which ends its ffmpeg), waiting up to
    `stop_s` for it.
    """
    ready: queue.Queue[tuple[bool, object]] = queue.Queue(depth)  # (is an item, item or error)
    stop = threading.Event()

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                ready.put((True, item))
                if stop.is_set():
                    return
            ready.put((False, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            ready.put((False, exc))
        finally:
            close = getattr(iterator, "close", None)  # a generator's: ends its ffmpeg
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name="read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            is_item, value = ready.get()
            if not is_item:
                if isinstance(value, BaseException):
                    raise value
                return
            yield cast(T, value)
    finally:
        stop.set()
        deadline = time.monotonic() + stop_s
        while producer.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):  # unblock a producer waiting to put
                ready.get(timeout=0.1)


class FrameEncoder:
    """Encode RGB frames to H.264 (`pix_fmt`, yuv420p unless told) at a constant rate, written
    as they arrive; stitch puts each frame back at its source time.

    `write` queues the frames for a writer thread and returns at once unless the queue is full,
    so the caller goes on while x264 encodes; `close` waits for the finished file.
    """

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        frame_rate: Fraction,
        crf: int,
        threads: int,
        timeout: float,
        depth: int = QUEUE_DEPTH,
        pix_fmt: str = "yuv420p",
        preset: str | None = None,
        x264: dict[str, str] | None = None,
    ) -> None:
        self.path, self.timeout, self.frames = path, timeout, 0
        argv = (
            ffmpeg.input(
                "pipe:",
                format="rawvideo",
                pix_fmt="rgb24",
                s=f"{width}x{height}",
                framerate=f"{frame_rate.numerator}/{frame_rate.denominator}",
            )
            .output(
                str(path),
                vcodec="libx264",
                pix_fmt=pix_fmt,
                crf=crf,
                preset=preset or X264_PRESET,
                threads=threads,
                movflags="+faststart",
                **(x264 or {}),
            )
            .global_args("-nostdin", "-v", "error", "-y")
            .compile()
        )
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close/abort)
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr
        )
        self._queue: queue.Queue[Frames | None] = queue.Queue(depth)
        self._broken: BaseException | None = None
        self._writer = threading.Thread(target=self._write_all, name="encode", daemon=True)
        self._writer.start()

    def _write_all(self) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            while (frames := self._queue.get()) is not None:
                stdin.write(frames.data)
        except OSError as exc:  # ffmpeg exited: close() reports why, from its stderr
            self._broken = exc
            while self._queue.get() is not None:  # keep write() from blocking on a full queue
                pass
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def write(self, frames: Frames) -> None:
        if self._broken is not None:
            self.close()  # raises with ffmpeg's own words
        self._queue.put(np.ascontiguousarray(frames))
        self.frames += len(frames)

    def close(self) -> None:
        """Wait until every written frame is encoded and the file is complete."""
        try:
            self._queue.put(None)
            self._writer.join()
            returncode = reap(self._proc, timeout=self.timeout, kind="encode")
            if returncode != 0 or self._broken is not None:
                raise FFmpegError(f"encoding {self.path.name} failed: {_stderr_tail(self._stderr)}")
        finally:
            self.abort()

    def abort(self) -> None:
        """Stop encoding now, leaving no process or thread behind; the file is incomplete."""
        kill(self._proc, kind="encode")
        if self._writer.is_alive():
            self._queue.put(None)
            self._writer.join()
        self._stderr.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
