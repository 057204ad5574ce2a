"""The temporal mode through the whole pipeline (`videostyle run`, 2 ranks, several units) on
real footage with a hard cut inside a unit: the flicker at least halved, at unit borders too,
every frame at its source time, close to the per-frame output, and nothing carried across the
cut."""

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from scripts.footage import real_clip
from tests.media import decode_rgb, frame_pts
from tests.videostyle.runs import run_styled
from videostyle.split import units_for
from videostyle.temporal.flicker import detail_ratio, input_motions, psnr, warping_errors
from videostyle.temporal.flow import Motion

RGB = npt.NDArray[np.uint8]
SIZE = (320, 180)
BUNNY, BIKES = 25, 15  # frames of each: the cut is frame 25, inside the third unit
MAX_UNIT_FRAMES = 10  # 40 frames on 2 ranks: 4 units of 10
RANKS = 2
CUT = BUNNY
# What the temporal mode holds against the per-frame output (README, "Temporal consistency").
MAX_RATIO = 0.5
MIN_PSNR_DB = 24.0
MIN_DETAIL = 0.6
# The runs are lossless (crf 0): the same styled frame decodes the same in both, up to this
# (mean absolute difference, levels); a blended one differs by far more (measured 11.9, 13.1).
SAME_FRAME_LEVELS = 0.5
BLENDED_LEVELS = 8.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Big Buck Bunny's first BUNNY frames then bikes' first BIKES, both at SIZE, 25 fps."""
    path = tmp_path_factory.mktemp("cut") / "bunny-then-bikes.mp4"
    w, h = SIZE
    scale = f"scale={w}:{h},setsar=1,fps=25,format=yuv420p"
    graph = (
        f"[0:v]trim=end_frame={BUNNY},{scale},setpts=PTS-STARTPTS[a];"
        f"[1:v]trim=end_frame={BIKES},{scale},setpts=PTS-STARTPTS[b];[a][b]concat=n=2:v=1[v]"
    )
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    argv += ["-i", str(real_clip("bigbuckbunny.mp4")), "-i", str(real_clip("bikes.mp4"))]
    argv += ["-filter_complex", graph, "-map", "[v]", "-c:v", "libx264", "-crf", "18", str(path)]
    subprocess.run(argv, check=True)
    return path


def run(source: Path, tmp: Path, *, temporal: bool) -> tuple[Path, dict[str, Any]]:
    return run_styled(
        source,
        tmp,
        max_unit_frames=MAX_UNIT_FRAMES,
        ranks=RANKS,
        output=tmp / f"{'temporal' if temporal else 'per-frame'}.mp4",
        # Lossless: what differs between the two runs is the styling alone.
        args=["--crf", "0", *(["--temporal"] if temporal else [])],
        env={"VIDEOSTYLE_COMPILE": "off"},
    )


@pytest.fixture(scope="module")
def outputs(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("runs")
    per_frame, report = run(clip, tmp, temporal=False)
    temporal, temporal_report = run(clip, tmp, temporal=True)
    assert (report["temporal"], temporal_report["temporal"]) == (False, True)
    # Two videos of one look: the steadied one published beside, not over, the per-frame one.
    assert report["output"] == "bunny-then-bikes.mp4/starry-night.mp4"
    assert temporal_report["output"] == "bunny-then-bikes.mp4/starry-night-steady.mp4"
    assert temporal_report["units"] == 4
    return {"per_frame": per_frame, "temporal": temporal}


@pytest.fixture(scope="module")
def frames(clip: Path, outputs: dict[str, Path]) -> dict[str, RGB]:
    return {"input": decode_rgb(clip)} | {mode: decode_rgb(p) for mode, p in outputs.items()}


@pytest.fixture(scope="module")
def motions(frames: dict[str, RGB]) -> list[Motion]:
    return input_motions(frames["input"])


def borders() -> list[int]:
    """The pairs (frames k, k + 1) that straddle a unit border."""
    return [u.start - 1 for u in units_for(BUNNY + BIKES, RANKS, MAX_UNIT_FRAMES)[1:]]


def test_the_temporal_mode_halves_the_flicker_at_unit_borders_too(
    frames: dict[str, RGB], motions: list[Motion]
) -> None:
    per_frame = warping_errors(frames["per_frame"], motions)
    temporal = warping_errors(frames["temporal"], motions)
    # The pair across the cut shows two shots: the flow sees almost nothing of one in the other
    # (the error there is the shots' difference, in both modes alike).
    assert motions[CUT - 1].visible_fraction < 0.1
    del per_frame[CUT - 1], temporal[CUT - 1]
    assert np.mean(temporal) <= MAX_RATIO * np.mean(per_frame)
    at = [k if k < CUT - 1 else k - 1 for k in borders()]  # the pairs' places, the cut's gone
    assert borders() == [9, 19, 29]
    border_ratio = np.mean([temporal[k] for k in at]) / np.mean([per_frame[k] for k in at])
    assert border_ratio <= MAX_RATIO


def test_the_temporal_mode_keeps_every_frame_and_its_time(
    clip: Path, outputs: dict[str, Path]
) -> None:
    assert frame_pts(outputs["temporal"]) == frame_pts(clip) == frame_pts(outputs["per_frame"])


def test_the_temporal_output_stays_close_to_the_per_frame_one(frames: dict[str, RGB]) -> None:
    assert psnr(frames["temporal"], frames["per_frame"]) >= MIN_PSNR_DB
    assert detail_ratio(frames["temporal"], frames["per_frame"]) >= MIN_DETAIL


def test_nothing_is_blended_across_a_hard_cut(frames: dict[str, RGB]) -> None:
    def gap(k: int) -> float:
        a, b = frames["temporal"][k].astype(np.int32), frames["per_frame"][k].astype(np.int32)
        return float(np.abs(a - b).mean())

    assert gap(CUT) <= SAME_FRAME_LEVELS  # the first frame of the new shot is styled afresh
    # while the frames around it are blended
    assert gap(CUT - 1) > BLENDED_LEVELS
    assert gap(CUT + 1) > BLENDED_LEVELS
