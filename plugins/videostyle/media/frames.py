"""Raw RGB frames streamed out of and into ffmpeg through pipes: no image files, bounded memory."""

import subprocess
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import ffmpeg
import numpy as np
import numpy.typing as npt

from videostyle.media.ffmpeg import FFmpegError

Frames = npt.NDArray[np.uint8]  # [N, H, W, 3] RGB


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
) -> Iterator[Frames]:
    """Yield batches of the `count` frames whose timestamps lie in [start_s, end_s).

    Decoding starts at the keyframe before `seek_s` and keeps the source's timestamps (-copyts),
    so the select filter picks frames by their own time: exact, whatever the GOP layout.
    """
    select = f"gte(t,{start_s!r})" + ("" if end_s is None else f"*lt(t,{end_s!r})")
    argv = (
        ffmpeg.input(str(path), ss=repr(seek_s), noaccurate_seek=None, copyts=None, threads=threads)
        .video.filter("select", select)
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
            returncode = proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
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


class FrameEncoder:
    """Encode RGB frames to H.264 (yuv420p) at a constant rate, written as they arrive."""

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
                pix_fmt="yuv420p",
                crf=crf,
                preset="medium",
                threads=threads,
                movflags="+faststart",
            )
            .global_args("-nostdin", "-v", "error", "-y")
            .compile()
        )
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in __exit__)
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr
        )

    def write(self, frames: Frames) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(np.ascontiguousarray(frames).tobytes())
        self.frames += len(frames)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._proc.stdin is not None
        try:
            if exc_type is not None:
                self._proc.kill()
            self._proc.stdin.close()
            returncode = self._proc.wait(timeout=self.timeout)
            if exc_type is None and returncode != 0:
                raise FFmpegError(f"encoding {self.path.name} failed: {_stderr_tail(self._stderr)}")
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            self._stderr.close()
