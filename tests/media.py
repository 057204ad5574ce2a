"""Test-side videos via ffmpeg: clips to feed the pipeline (scripts.clips, the generator the
benchmark uses too), stand-ins for its styled ones, and readers of what it wrote (frames,
timestamps and durations)."""

import json
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from scripts.clips import CLIP_FRAMES as CLIP_FRAMES
from scripts.clips import CLIP_RATE as CLIP_RATE
from scripts.clips import CLIP_SIZE as CLIP_SIZE
from scripts.clips import make_clip as make_clip


def restyled(source: Path, path: Path, video_filter: str) -> Path:
    """A stand-in for a scored video: `source` through an ffmpeg filter, frames and timing kept."""
    encode = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "copy"]
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-i",
            str(source),
            "-vf",
            video_filter,
            *encode,
            str(path),
        ],
        check=True,
    )
    return path


def decode_rgb(path: Path, video_filter: str | None = None) -> npt.NDArray[np.uint8]:
    """Every frame of the first video stream as RGB, [N, H, W, 3]; through `video_filter`
    first if given (one that keeps the size)."""
    info = stream_info(path, "v")
    raw = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            *(["-vf", video_filter] if video_filter else []),
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, info["height"], info["width"], 3)


def audio_packets(path: Path) -> list[str]:
    """The first audio stream as ffmpeg's framemd5 lists it when stream-copied: a header naming
    the codec, its parameters and the MD5 of its extradata, then one line per packet with its
    timestamps, size and the MD5 of its bytes. Equal lists: the same audio, bit for bit."""
    out = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:a:0",
            "-c",
            "copy",
            "-f",
            "framemd5",
            "-",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line for line in out.splitlines() if not line.startswith("#software")]


def decode_audio(path: Path) -> tuple[npt.NDArray[np.int16], int]:
    """The first audio stream decoded (encoder delay and padding trimmed, as players do) to
    mono 16-bit samples, and its sample rate."""
    rate = int(stream_info(path, "a")["sample_rate"])
    raw = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:a:0",
            "-ac",
            "1",
            "-f",
            "s16le",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, np.int16), rate


def frame_times(path: Path) -> list[float]:
    """Every frame's presentation time in seconds (frame_pts, as floats)."""
    return [float(t) for t in frame_pts(path)]


def frame_pts(path: Path) -> list[Fraction]:
    """Every frame's presentation time in seconds, exactly (its pts times its stream's time
    base), in display order: what the container holds, before any rounding to microseconds."""
    time_base = Fraction(stream_info(path, "v")["time_base"])
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts",
            "-of",
            "csv=p=0",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [int(line.split(",")[0]) * time_base for line in out.split()]


def stream_info(path: Path, kind: str) -> dict[str, Any]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            f"{kind}:0",
            "-show_streams",
            "-of",
            "json",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    streams: list[dict[str, Any]] = json.loads(out)["streams"]
    return streams[0] if streams else {}


def psnr(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
