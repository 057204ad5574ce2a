"""Flicker, measured: the warping error of Lai et al., "Learning Blind Video Temporal
Consistency" (ECCV 2018).

For each pair of consecutive frames the previous output frame is warped onto the next by the
optical flow of the *input* frames (videostyle.temporal.flow), and the error is the mean squared
difference of the two, RGB in [0, 1], over the pixels the flow marks visible (the
forward-backward check). A video's warping error is the mean over its pairs; per-pair values let
a caller tell the pairs at unit borders from those inside units.

Blurring the style away would score well too, so a steadied output is also held to the per-frame
output: `psnr` and `detail_ratio` (how much of the per-frame output's fine texture it keeps).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from videostyle.temporal.flow import Motion, gray, motion

Frames = npt.NDArray[np.uint8]  # [N, H, W, 3] RGB


def input_motions(inputs: Frames) -> list[Motion]:
    """The motion from each input frame to the next (N - 1 of them)."""
    lumas = [gray(frame) for frame in inputs]
    return [motion(a, b) for a, b in itertools.pairwise(lumas)]


def pair_error(previous: npt.NDArray[np.uint8], current: npt.NDArray[np.uint8], m: Motion) -> float:
    """The warping error of one pair: `previous` warped onto `current` by `m`, over its visible
    pixels (0 when none is visible)."""
    if not m.visible.any():
        return 0.0
    warped = m.warp(previous).astype(np.float32) / 255
    diff = (current.astype(np.float32) / 255 - warped)[m.visible]
    return float(np.mean(diff**2))


def warping_errors(frames: Frames, motions: Sequence[Motion]) -> list[float]:
    """Each pair's warping error: pair k is frames k and k + 1, moving as `motions[k]` says
    (input_motions of the input these frames were made from)."""
    if len(motions) != len(frames) - 1:
        raise ValueError(f"{len(frames)} frames need {len(frames) - 1} motions, not {len(motions)}")
    return [pair_error(frames[k], frames[k + 1], m) for k, m in enumerate(motions)]


def warping_error(frames: Frames, inputs: Frames | None = None) -> float:
    """A sequence's warping error (mean over its pairs), the flow computed on `inputs` (the
    frames themselves when None)."""
    motions = input_motions(frames if inputs is None else inputs)
    errors = warping_errors(frames, motions)
    return float(np.mean(errors)) if errors else 0.0


def psnr(a: Frames, b: Frames) -> float:
    """Peak signal-to-noise ratio of `a` against `b`, in dB (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def detail(frames: Frames) -> float:
    """Fine texture: the mean squared Laplacian of the frames' luma."""
    import cv2

    energy = [float(np.mean(cv2.Laplacian(gray(f), cv2.CV_32F) ** 2)) for f in frames]
    return float(np.mean(energy))


def detail_ratio(frames: Frames, reference: Frames) -> float:
    """How much of `reference`'s fine texture `frames` keep (1: all of it; a blur is below)."""
    return detail(frames) / max(detail(reference), 1e-9)
