"""The warping error on cases whose answer is known: a still scene, injected noise, a known
translation followed by the flow."""

import numpy as np
import numpy.typing as npt
import pytest

from videostyle.temporal.flicker import (
    detail_ratio,
    input_motions,
    psnr,
    warping_error,
    warping_errors,
)
from videostyle.temporal.flow import gray, motion

SHIFT = (3, 2)  # pixels right and down per frame


def texture(height: int = 96, width: int = 128, seed: int = 0) -> npt.NDArray[np.uint8]:
    """A smooth random RGB texture: something the flow can follow."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (height // 4, width // 4, 3)).astype(np.float32)
    big = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(big, 0, 255).astype(np.uint8)


def moving(frames: int) -> npt.NDArray[np.uint8]:
    """A texture sliding SHIFT pixels a frame (cut from a larger one: no wrap-around)."""
    big = texture(96 + 2 * SHIFT[1] * frames, 128 + 2 * SHIFT[0] * frames)
    dx, dy = SHIFT
    x0, y0 = dx * frames, dy * frames
    return np.stack(
        [
            big[y0 - dy * k : y0 - dy * k + 96, x0 - dx * k : x0 - dx * k + 128]
            for k in range(frames)
        ]
    )


def test_a_still_scene_scores_zero() -> None:
    still = np.stack([texture()] * 4)
    assert warping_error(still) == pytest.approx(0, abs=1e-6)


def test_a_frame_with_injected_noise_scores_high() -> None:
    still = np.stack([texture()] * 4)
    noisy = still.copy()
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 20, noisy[2].shape)
    noisy[2] = np.clip(noisy[2] + noise, 0, 255).astype(np.uint8)
    errors = warping_errors(noisy, input_motions(still))
    # (20/255)² ≈ 6e-3 on the two pairs the noisy frame is in; nothing on the other.
    assert errors[0] == pytest.approx(0, abs=1e-6)
    assert errors[1] == pytest.approx((20 / 255) ** 2, rel=0.2)
    assert errors[2] == pytest.approx((20 / 255) ** 2, rel=0.2)


def test_a_known_translation_is_followed_by_the_flow() -> None:
    frames = moving(3)
    m = motion(gray(frames[0]), gray(frames[1]))
    # Frame 1 holds frame 0's content SHIFT further on: it comes from x - SHIFT.
    inner = m.flow_back[8:-8, 8:-8]
    assert np.median(inner[..., 0]) == pytest.approx(-SHIFT[0], abs=0.1)
    assert np.median(inner[..., 1]) == pytest.approx(-SHIFT[1], abs=0.1)
    # What entered the picture at the top and left edges was not in frame 0: not visible.
    assert not m.visible[:, : SHIFT[0] - 1].any()
    assert not m.visible[: SHIFT[1] - 1, :].any()
    assert m.visible_fraction > 0.85
    # The moving scene is steady along its flow, and not at all without it.
    assert warping_error(frames) < 2e-4
    assert warping_errors(frames, input_motions(np.stack([frames[0]] * 3)))[0] > 20 * 2e-4


def test_the_flow_on_shrunk_frames_is_brought_back_to_their_size() -> None:
    frames = moving(2)
    m = motion(gray(frames[0]), gray(frames[1]), "fast", 2)
    assert m.flow_back.shape == (*frames.shape[1:3], 2)
    assert m.visible.shape == frames.shape[1:3]
    inner = m.flow_back[8:-8, 8:-8]
    assert np.median(inner[..., 0]) == pytest.approx(-SHIFT[0], abs=0.25)
    assert np.median(inner[..., 1]) == pytest.approx(-SHIFT[1], abs=0.25)
    assert m.visible_fraction > 0.8


def test_distance_from_a_reference() -> None:
    import cv2

    frames = np.stack([texture(seed=k) for k in range(2)])
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 2) for f in frames])
    assert psnr(frames, frames) == float("inf")
    assert psnr(blurred, frames) < 40
    assert detail_ratio(frames, frames) == pytest.approx(1)
    assert detail_ratio(blurred, frames) < 0.5
