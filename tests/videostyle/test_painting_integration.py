"""`painting` end to end through `python -m videostyle run` (mpirun -n 2, real weights), with
real photos from scikit-image as style images: JPEG, PNG and WebP."""

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

from tests.media import decode_rgb, frame_times, make_clip, psnr
from tests.style_images import save_photo
from videostyle.commands import process_env, step_argv
from videostyle.media.frames import FrameEncoder
from videostyle.media.images import read_style_image
from videostyle.models.magenta_arbitrary import style_vector
from videostyle.models.registry import load_model

pytestmark = pytest.mark.integration

RGB = npt.NDArray[np.uint8]
FRAMES = 50
RANKS = 2


class Painted:
    """One `videostyle run`: its frames and its report."""

    def __init__(self, frames: RGB, report: dict[str, Any], output: Path) -> None:
        self.frames = frames
        self.report = report
        self.output = output


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("painting")


@pytest.fixture(scope="module")
def clip(folder: Path) -> Path:
    return make_clip(folder / "clip.mp4", frames=FRAMES)


@pytest.fixture(scope="module")
def paintings(folder: Path) -> dict[str, Path]:
    return {
        "coffee": save_photo(folder / "styles" / "coffee.jpg", "coffee"),
        "chelsea": save_photo(folder / "styles" / "chelsea.png", "chelsea"),
        "astronaut": save_photo(folder / "styles" / "astronaut.webp", "astronaut"),
    }


@pytest.fixture(scope="module")
def paint(folder: Path, clip: Path) -> Callable[..., Painted]:
    """`videostyle run clip.mp4 OUT --model painting --style-image PATH`, each distinct command
    line run once for the module."""
    done: dict[tuple[str, ...], Painted] = {}

    def run(style_image: Path, *extra: str, ranks: int = RANKS, again: str = "") -> Painted:
        key = (str(style_image), *extra, str(ranks), again)
        if key not in done:
            output = folder / "out" / f"{len(done)}" / "painted.mp4"
            argv = [str(clip), str(output), "--model", "painting"]
            argv += ["--style-image", str(style_image), *extra, "--ranks", str(ranks)]
            ran = subprocess.run(
                step_argv("run", argv),
                env=process_env(
                    {
                        "VIDEOSTYLE_SCRATCH_DIR": str(folder / "scratch"),
                        "VIDEOSTYLE_MAX_UNIT_FRAMES": "9",  # 6 units, whether 1 rank or 2
                    }
                ),
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert ran.returncode == 0, ran.stderr[-3000:]
            report = json.loads(ran.stdout.strip().splitlines()[-1])
            done[key] = Painted(decode_rgb(output), report, output)
        return done[key]

    return run


def mean_abs_diff(a: RGB, b: RGB) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_every_frame_is_painted_in_the_style_images_look_with_the_source_timing(
    paint: Callable[..., Painted], paintings: dict[str, Path], clip: Path, tmp_path: Path
) -> None:
    painted = paint(paintings["coffee"])
    source = decode_rgb(clip)

    assert painted.frames.shape == source.shape == (FRAMES, 108, 192, 3)
    assert frame_times(painted.output) == pytest.approx(frame_times(clip), abs=1e-4)
    # Every frame far from its source (measured: 90 to 102, mean |difference| per channel value).
    per_frame = [mean_abs_diff(p, s) for p, s in zip(painted.frames, source, strict=True)]
    assert min(per_frame) > 40, per_frame
    # ...and close to the model applied directly to the decoded frames with the image's vector.
    # The reference is that output losslessly in the video's 4:2:0 format (chroma subsampling
    # alone caps RGB PSNR on dense texture); measured 36.3 dB.
    vector = style_vector(read_style_image(paintings["coffee"]), 1.0)
    model = load_model(
        "painting",
        {"style_image": "coffee.jpg"},
        device=torch.device("cpu"),
        prepared={"style_vector": vector.reshape(-1).tolist()},
    )
    direct = tmp_path / "direct.mp4"
    with FrameEncoder(
        direct,
        width=192,
        height=108,
        frame_rate=Fraction(24000, 1001),
        crf=0,
        threads=2,
        timeout=60,
    ) as encoder:
        for i in range(0, FRAMES, 10):
            encoder.write(model(torch.from_numpy(source[i : i + 10].copy())).numpy())
    assert psnr(painted.frames, decode_rgb(direct)) >= 30

    report = painted.report
    assert report["output"] == "clip.mp4/coffee.mp4"
    assert (report["frames"], report["units"], report["model"]) == (FRAMES, 6, "painting")
    assert {r["rank"] for r in report["timings"]["score"]["ranks"]} == {0, 1}


def test_the_report_names_the_style_image_and_its_sha256(
    paint: Callable[..., Painted], paintings: dict[str, Path]
) -> None:
    report = paint(paintings["chelsea"]).report

    assert report["options"] == {"style_image": "chelsea.png", "strength": 1.0}
    assert report["model_details"] == {
        "style_image": "chelsea.png",
        "style_image_sha256": hashlib.sha256(paintings["chelsea"].read_bytes()).hexdigest(),
        "style_image_size": [451, 300],
        "content_frame": None,  # at full strength the content's own vector is not needed
    }


def test_different_style_images_give_clearly_different_videos(
    paint: Callable[..., Painted], paintings: dict[str, Path]
) -> None:
    painted = {name: paint(path).frames for name, path in paintings.items()}
    names = sorted(painted)
    # Measured (mean |difference| per channel value, 0..255): coffee/chelsea 34.5, coffee/
    # astronaut 35.8, chelsea/astronaut 37.9; the same image twice 0, the H.264 encode's own
    # error about 3 (36 dB, above).
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert mean_abs_diff(painted[a], painted[b]) > 25, (a, b)
    assert paint(paintings["astronaut"]).report["output"] == "clip.mp4/astronaut.mp4"


def test_the_same_image_twice_gives_identical_frames_whatever_the_ranks(
    paint: Callable[..., Painted], paintings: dict[str, Path], folder: Path
) -> None:
    """Two jobs, each preparing the vector anew from the image (under another path), one scored
    by 2 ranks, one by 1: every frame identical, and so is the encoded video."""
    first = paint(paintings["coffee"])
    copy = folder / "elsewhere" / "coffee.jpg"
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(paintings["coffee"], copy)
    again = paint(copy, ranks=1)

    assert np.array_equal(first.frames, again.frames)
    assert again.report["sha256"] == first.report["sha256"]
    assert again.report["model_details"] == first.report["model_details"]


def test_a_softer_strength_paints_nearer_the_source(
    paint: Callable[..., Painted], paintings: dict[str, Path], clip: Path
) -> None:
    full = paint(paintings["coffee"])
    half = paint(paintings["coffee"], "--strength", "0.5")
    source = decode_rgb(clip)

    assert half.report["output"] == "clip.mp4/coffee-s50.mp4"
    assert half.report["model_details"]["content_frame"] == FRAMES // 2
    assert half.frames.shape == full.frames.shape
    # Measured: half vs full 52.8; from the source, full 99.5 and half 84.3.
    assert mean_abs_diff(half.frames, full.frames) > 10
    assert mean_abs_diff(half.frames, source) < mean_abs_diff(full.frames, source) - 5
