"""Running ffmpeg/ffprobe and reading what a media file holds."""

import json
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

from videostyle.errors import BadInputError, VideostyleError


class FFmpegError(VideostyleError):
    """ffmpeg failed on a file this project made itself: a fault here, not in the input."""


def run(argv: list[str], *, timeout: float) -> bytes:
    """Run an ffmpeg/ffprobe argv to completion; its stderr is in the error when it fails."""
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise FFmpegError(f"{argv[0]} ran past {timeout:.0f} s: {' '.join(argv)}") from exc
    if done.returncode != 0:
        stderr = done.stderr.decode(errors="replace").strip()
        raise FFmpegError(f"{argv[0]} exited {done.returncode}: {stderr[-2000:]}")
    return done.stdout


@dataclass(frozen=True)
class MediaInfo:
    """The facts of a video that the pipeline plans with; timestamps in seconds."""

    width: int
    height: int
    frame_count: int
    frame_times: tuple[float, ...]  # presentation time of every frame, in display order
    frame_rate: Fraction
    constant_frame_rate: bool
    audio_streams: int
    duration_s: float

    @property
    def start_s(self) -> float:
        return self.frame_times[0]


def probe(path: Path, *, timeout: float) -> MediaInfo:
    """Probe a video by demuxing it (no decode): stream facts and every frame's timestamp."""
    try:
        streams = json.loads(
            run(
                [
                    "ffprobe",
                    "-v",
                    "error",
                    "-show_streams",
                    "-show_format",
                    "-of",
                    "json",
                    str(path),
                ],
                timeout=timeout,
            )
        )
    except FFmpegError as exc:
        raise BadInputError(f"{path.name} is not a readable media file: {exc}") from exc
    video = [
        s
        for s in streams.get("streams", [])
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
    ]
    if not video:
        raise BadInputError(f"{path.name} has no video stream")
    stream = video[0]
    time_base = Fraction(stream["time_base"])
    packets = run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            str(stream["index"]),
            "-show_entries",
            "packet=pts",
            "-of",
            "csv=p=0",
            str(path),
        ],
        timeout=timeout,
    )
    pts = sorted(
        int(line) for line in packets.decode().split() if line.strip().lstrip("-").isdigit()
    )
    if not pts:
        raise BadInputError(f"{path.name} has a video stream with no frames")
    steps = {b - a for a, b in pairwise(pts)}
    constant = len(steps) <= 1
    if len(steps) == 1:
        frame_rate = 1 / (next(iter(steps)) * time_base)
    else:
        frame_rate = Fraction(stream.get("avg_frame_rate", "0/1"))
        if frame_rate <= 0:
            frame_rate = Fraction(stream.get("r_frame_rate", "25/1"))
    return MediaInfo(
        width=int(stream["width"]),
        height=int(stream["height"]),
        frame_count=len(pts),
        frame_times=tuple(float(p * time_base) for p in pts),
        frame_rate=frame_rate,
        constant_frame_rate=constant,
        audio_streams=sum(s.get("codec_type") == "audio" for s in streams["streams"]),
        duration_s=float(streams.get("format", {}).get("duration", 0.0)),
    )
