"""The temporal transform on its own, around a stand-in styler that flickers: steadier, reset at
a cut, warmed by the frames before a unit, and a unit's output a function of its window alone
(what a resumed score relies on)."""

import hashlib

import numpy as np
import numpy.typing as npt
import pytest
import torch

from tests.videostyle.temporal.test_flicker import moving
from videostyle.errors import BadParameterError
from videostyle.models.registry import get_model
from videostyle.steps.preprocess import validate_job
from videostyle.temporal.flicker import input_motions, warping_errors
from videostyle.temporal.steady import BLEND, LEAD_FRAMES, Steady, steady

NOISE = 24.0  # the stand-in's flicker, in levels


class Flickering:
    """A stand-in styling model: the frame plus noise drawn from the frame's own bytes, so the
    same frame always comes out the same and consecutive frames boil."""

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        out = []
        for frame in frames.numpy():
            seed = int.from_bytes(hashlib.sha256(frame.tobytes()).digest()[:8], "little")
            noise = np.random.default_rng(seed).normal(0, NOISE, frame.shape)
            out.append(np.clip(frame + noise, 0, 255).astype(np.uint8))
        return torch.from_numpy(np.stack(out))

    def warm_up(self, batch: int, height: int, width: int) -> None:
        pass


def styled(frames: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    return Flickering()(torch.from_numpy(frames)).numpy()


def unit(
    window: npt.NDArray[np.uint8], lead: int, count: int, transform: Steady | None = None
) -> npt.NDArray[np.uint8]:
    transform = transform or Steady(Flickering(), batch=2)
    out, facts = transform.unit(torch.from_numpy(window), lead=lead, count=count)
    assert out.shape == (count, *window.shape[1:])
    assert set(facts) == {"temporal"}
    return out.numpy()


def test_steadied_frames_flicker_less() -> None:
    frames = moving(12)
    per_frame = styled(frames)
    out, cuts = steady(frames, per_frame)
    motions = input_motions(frames)
    assert cuts == []
    assert np.mean(warping_errors(out, motions)) < 0.5 * np.mean(warping_errors(per_frame, motions))
    assert (out[0] == per_frame[0]).all()  # nothing to carry into the first frame


def test_a_cut_restarts_the_state() -> None:
    other = moving(3)[:, ::-1] // 2 + 20  # another shot: mirrored, darker
    frames = np.concatenate([moving(5), other])
    per_frame = styled(frames)
    out, cuts = steady(frames, per_frame)
    assert cuts == [5]
    assert (out[5] == per_frame[5]).all()  # nothing carried across the cut
    assert not (out[6] == per_frame[6]).all()  # and carried again after it


def test_the_lead_warms_a_units_state_and_is_dropped() -> None:
    frames = moving(4 + LEAD_FRAMES)
    whole, _ = steady(frames, styled(frames))
    warmed = unit(frames, lead=LEAD_FRAMES, count=4)
    cold = unit(frames[LEAD_FRAMES:], lead=0, count=4)
    # With its lead, a unit's first frame is (within BLEND ** LEAD_FRAMES of the state) what
    # one pass over the whole sequence gives it; without, only the frame styled on its own.
    assert (cold[0] == styled(frames[LEAD_FRAMES:])[0]).all()
    gap_warm = np.abs(warmed[0].astype(float) - whole[LEAD_FRAMES]).mean()
    gap_cold = np.abs(cold[0].astype(float) - whole[LEAD_FRAMES]).mean()
    assert gap_warm < 2 * BLEND**LEAD_FRAMES * gap_cold + 0.5


def test_a_units_output_depends_on_its_window_alone() -> None:
    """What resuming a preempted score relies on: redoing a unit, after any other, gives it the
    same bytes."""
    frames = moving(10)
    transform = Steady(Flickering(), batch=2)
    first = unit(frames[:7], lead=3, count=4, transform=transform)
    unit(frames[3:], lead=2, count=5, transform=transform)  # another unit in between
    assert (unit(frames[:7], lead=3, count=4, transform=transform) == first).all()
    assert (unit(frames[:7], lead=3, count=4) == first).all()  # and on another rank


def test_a_model_that_must_not_blend_is_refused_the_temporal_mode() -> None:
    assert get_model("multistyle26").temporal
    assert not get_model("anonymize").temporal
    validate_job(model="multistyle26", options={}, crf=23, temporal=True)
    with pytest.raises(BadParameterError, match="anonymize"):
        validate_job(model="anonymize", options={}, crf=23, temporal=True)
