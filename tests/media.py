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


def make_clip(
    path: Path,
    *,
    frames: int = CLIP_FRAMES,
    audio: bool = True,
    size: tuple[int, int] = CLIP_SIZE,
    audio_codec: str = "aac",
) -> Path:
    """A real H.264 clip (moving test pattern) with audio (a 440 Hz tone, AAC unless
    `audio_codec` says otherwise), made by ffmpeg; the container is the one `path` names."""
    width, height = size
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
            audio_codec,
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
