"""Test-side videos via ffmpeg: clips to feed the pipeline, stand-ins for its styled ones, and
readers of what it wrote (frames, timestamps and durations)."""

import json
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt

CLIP_RATE = "24000/1001"  # NTSC film rate: a hard-coded 30 fps or a rounded 23.98 shows up
CLIP_SIZE = (192, 108)  # 108 is not a multiple of 4: the model's padding is exercised
CLIP_FRAMES = 50


def make_clip(path: Path, *, frames: int = CLIP_FRAMES, audio: bool = True) -> Path:
    """A real H.264 clip (moving test pattern) with AAC audio, made by ffmpeg."""
    width, height = CLIP_SIZE
    argv = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={width}x{height}:rate={CLIP_RATE},trim=end_frame={frames}",
    ]
    if audio:
        argv += [
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-c:a",
            "aac",
            "-shortest",
        ]
    argv += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "12", str(path)]
    subprocess.run(argv, check=True)
    return path


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


def decode_rgb(path: Path) -> npt.NDArray[np.uint8]:
    """Every frame of the first video stream as RGB, [N, H, W, 3]."""
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


def frame_times(path: Path) -> list[float]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts_time",
            "-of",
            "json",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [float(frame["pts_time"]) for frame in json.loads(out)["frames"]]


def stream_info(path: Path, kind: str) -> dict:
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
    streams = json.loads(out)["streams"]
    return streams[0] if streams else {}


def psnr(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
