"""A unit's decoder stops at the unit's end instead of decoding the rest of the video, and its
CPU time is counted (each ffmpeg child's own, from os.wait4) under "decode"."""

import subprocess
from pathlib import Path

import pytest

from videostyle.media.ffmpeg import ffmpeg_cpu_delta, probe
from videostyle.media.frames import read_frames, time_range

FRAMES, UNIT = 400, 25


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 s of 640x360 H.264 (x264 superfast: CABAC and deblocking, which make decoding cost),
    a keyframe every second."""
    path = tmp_path_factory.mktemp("clip") / "long.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
         "-frames:v", str(FRAMES), "-c:v", "libx264", "-preset", "superfast", "-g", "25",
         "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def decode_cpu(path: Path, first: int, stop: int) -> float:
    info = probe(path, timeout=60, decode=False)
    span = time_range(info.frame_times, first, stop)
    with ffmpeg_cpu_delta() as cpu:
        got = sum(
            len(frames)
            for frames in read_frames(
                path,
                width=info.width,
                height=info.height,
                seek_s=span.seek_s,
                start_s=span.start_s,
                end_s=span.end_s,
                count=stop - first,
                batch=8,
                threads=1,
                timeout=60,
            )
        )
    assert got == stop - first
    return cpu["decode"]


def test_a_units_decoder_stops_at_its_end(long_clip: Path) -> None:
    whole = decode_cpu(long_clip, 0, FRAMES)
    first_unit = decode_cpu(long_clip, 0, UNIT)
    assert whole > 0
    # 25 of 400 frames, plus ffmpeg's start-up: far less than the whole video
    assert first_unit < whole / 3, (first_unit, whole)
