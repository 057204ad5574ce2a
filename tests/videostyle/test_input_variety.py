"""Inputs of every usual shape process correctly, end to end (`videostyle run`, mpirun -n 2)."""

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.media import decode_rgb, frame_pts, stream_info
from videostyle.pipeline import run_local
from videostyle.settings import Settings

pytestmark = pytest.mark.integration

TONE = ["-f", "lavfi", "-i", "sine=frequency=300:duration=1"]


def _make(path: Path, video: str, *args: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", video, *args, str(path)],
        check=True,
    )
    return path


def _style(source: Path, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    output = tmp_path / "styled.mp4"
    settings = Settings(scratch_dir=tmp_path / "scratch", max_unit_frames=4)
    report = run_local(
        source,
        output,
        model="multistyle26",
        options={"style": "scream", "strength": 1.0},
        crf=16,
        ranks=2,
        settings=settings,
    )
    return output, report


def _audio_streams(path: Path) -> list[str]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "a",
            "-show_entries",
            "stream=codec_name,channels",
            "-of",
            "csv=p=0",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()


CASES = {
    "single frame.mp4": ("testsrc2=size=64x48:rate=25,trim=end_frame=1", "-c:v", "libx264"),
    "yuv444.mp4": (
        "testsrc2=size=64x48:rate=25:duration=0.4",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv444p",
    ),
    "ten-bit.mkv": (
        "testsrc2=size=64x48:rate=30000/1001:duration=0.4",
        "-c:v",
        "libx265",
        "-pix_fmt",
        "yuv420p10le",
        "-x265-params",
        "log-level=error",
    ),
    "vp9 opus.webm": (
        "testsrc2=size=64x48:rate=24:duration=0.5",
        *TONE,
        "-c:v",
        "libvpx-vp9",
        "-c:a",
        "libopus",
        "-shortest",
    ),
    "prores pcm.mov": (
        "testsrc2=size=64x48:rate=25:duration=0.4",
        *TONE,
        "-c:v",
        "prores",
        "-c:a",
        "pcm_s16le",
        "-shortest",
    ),
    "два потока.mkv": (
        "testsrc2=size=64x48:rate=25:duration=0.4",
        *TONE,
        *TONE,
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:a",
        "-c:v",
        "libx264",
        "-c:a",
        "aac",
        "-shortest",
    ),
}


# What each case's report lists under `changes`: every liberty taken with the source.
CHANGES = {
    "yuv444.mp4": ["chroma 4:4:4 reduced to 4:2:0"],
    "ten-bit.mkv": ["10-bit samples reduced to 8-bit"],
    "vp9 opus.webm": ["audio re-encoded to AAC: opus cannot go into MP4 as it is"],
    "prores pcm.mov": [
        "10-bit samples reduced to 8-bit",
        "chroma 4:2:2 reduced to 4:2:0",
        "audio re-encoded to AAC: pcm_s16le cannot go into MP4 as it is",
    ],
}


@pytest.mark.parametrize("name", list(CASES))
def test_input_is_styled_frame_for_frame(name: str, tmp_path: Path) -> None:
    video, *args = CASES[name]
    source = _make(tmp_path / name, video, *args)

    output, report = _style(source, tmp_path)

    styled, original = decode_rgb(output), decode_rgb(source)
    assert styled.shape == original.shape
    assert report["frames"] == len(original)
    # Every frame at its source time, exactly: Matroska's whole milliseconds included.
    assert frame_pts(output) == frame_pts(source)
    assert report["changes"] == CHANGES.get(name, [])
    assert len(_audio_streams(output)) == len(_audio_streams(source))
    assert stream_info(output, "v")["pix_fmt"] == "yuv420p"


def test_rotated_phone_video_comes_out_upright(tmp_path: Path) -> None:
    plain = _make(
        tmp_path / "plain.mp4", "testsrc2=size=64x48:rate=25:duration=0.4", "-c:v", "libx264"
    )
    rotated = tmp_path / "rotated.mov"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-i",
            str(plain),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
            str(rotated),
        ],
        check=True,
    )

    output, report = _style(rotated, tmp_path)

    assert decode_rgb(output).shape == (10, 64, 48, 3)  # upright, as players show the input
    assert [change.split(":")[0] for change in report["changes"]] == ["turned upright"]
    assert stream_info(output, "v").get("side_data_list") is None  # no rotation left to apply
