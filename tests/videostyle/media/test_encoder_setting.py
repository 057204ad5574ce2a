"""The units' x264 setting chosen by bench/encode.py: units come out at that preset and CRF,
and styled footage encoded so keeps the former default's quality (fast, CRF 16) within 0.2 dB."""

import functools
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch

from scripts.footage import real_clip
from tests.videostyle.runs import STYLE
from videostyle.defaults import BUILTIN_MODEL, DEFAULT_CRF
from videostyle.media.frames import FrameEncoder
from videostyle.models.base import FrameTransform
from videostyle.models.registry import load_model

CHOSEN_PRESET, CHOSEN_CRF = "veryfast", 13  # bench/encode.py's choice
FORMER = ("fast", 16)  # the default it was chosen against
PSNR_SLACK_DB = 0.2
SIZE = (640, 360)
FRAMES = 5

Raw = npt.NDArray[np.uint8]


def x264_options(path: Path) -> str:
    """The settings x264 writes into its stream (an SEI message): 'cabac=1 ref=1 ... crf=12.0'."""
    found = re.search(rb"options: ([^\x00\x80]*)", path.read_bytes())
    assert found, f"no x264 settings in {path.name}"
    return found.group(1).decode()


def decode(path: Path) -> Raw:
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "rawvideo",
         "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(-1, SIZE[1], SIZE[0], 3)


def encode(path: Path, frames: Raw, **setting: object) -> Path:
    with FrameEncoder(
        path,
        width=SIZE[0],
        height=SIZE[1],
        frame_rate=Fraction(25),
        threads=1,
        timeout=120,
        **setting,  # type: ignore[arg-type]
    ) as encoder:
        encoder.write(frames)
    return path


def psnr(a: Raw, b: Raw) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float(10 * np.log10(255.0**2 / mse))


@pytest.fixture(scope="module", params=["bigbuckbunny.mp4", "bikes.mp4"])
def styled(request: pytest.FixtureRequest) -> Raw:
    """The first frames of real footage at 640x360 (Big Buck Bunny: animation; bikes: camera
    footage), styled by the built-in model."""
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(real_clip(request.param)),
         "-vf", f"scale={SIZE[0]}:{SIZE[1]}", "-frames:v", str(FRAMES),
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    frames = np.frombuffer(raw, np.uint8).reshape(-1, SIZE[1], SIZE[0], 3)
    with torch.inference_mode():
        return np.concatenate([model()(torch.from_numpy(f[None].copy())).numpy() for f in frames])


@functools.cache
def model() -> FrameTransform:
    return load_model(BUILTIN_MODEL, {"style": STYLE}, device=torch.device("cpu"))


def test_units_come_out_at_the_chosen_preset_and_crf(tmp_path: Path) -> None:
    assert DEFAULT_CRF == CHOSEN_CRF
    frames = np.random.default_rng(0).integers(0, 256, (4, SIZE[1], SIZE[0], 3), np.uint8)
    unit = encode(tmp_path / "unit.mp4", frames, crf=DEFAULT_CRF)
    # The same frames through x264 as the CLI sets it: every setting of the preset matches.
    (tmp_path / "frames.rgb").write_bytes(frames.tobytes())
    direct = tmp_path / "direct.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
         "-s", f"{SIZE[0]}x{SIZE[1]}", "-framerate", "25", "-i", str(tmp_path / "frames.rgb"),
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", CHOSEN_PRESET,
         "-crf", str(CHOSEN_CRF), "-threads", "1", str(direct)],
        check=True,
    )  # fmt: skip
    options = x264_options(unit)
    assert f" crf={CHOSEN_CRF}.0 " in options
    assert options == x264_options(direct)


def test_the_chosen_setting_keeps_the_former_quality(styled: Raw, tmp_path: Path) -> None:
    # Against the frames as the output's 4:2:0 holds them (x264 lossless): in RGB, chroma
    # subsampling alone costs this texture about 8 dB, for every setting alike.
    in_420 = decode(encode(tmp_path / "lossless.mp4", styled, preset="ultrafast", crf=0))
    chosen = decode(encode(tmp_path / "chosen.mp4", styled, crf=DEFAULT_CRF))
    former = decode(encode(tmp_path / "former.mp4", styled, preset=FORMER[0], crf=FORMER[1]))
    assert psnr(chosen, in_420) >= psnr(former, in_420) - PSNR_SLACK_DB
    assert psnr(chosen, styled) >= psnr(former, styled) - PSNR_SLACK_DB  # and in RGB
