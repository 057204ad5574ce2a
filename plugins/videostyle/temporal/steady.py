"""The temporal mode: any styling model's frames, steadied along the input's motion.

Styling each frame on its own makes the texture boil: the network turns the input's small
changes from frame to frame (noise, compression, light) into large changes of its strokes. The
`Steady` transform wraps a styling model's FrameTransform and, frame by frame, carries the
previous *output* frame along the optical flow of the *input* (videostyle.temporal.flow) and
blends it in where the flow sees the pixel:

    out_t = s_t + BLEND * M_t * (warp(out_{t-1}) - s_t)

s_t the frame styled on its own, M_t the pixels of frame t visible in frame t-1 (the flow's
forward-backward check, and the warped input agreeing with the input there, so a wrong flow never
drags strokes along). At a scene cut (most of the picture unseen before, or the luma histogram
changing) the state restarts: out_t = s_t.

Units are styled by different ranks at once, so a unit cannot wait for its predecessor's last
frame: scoring hands the transform `LEAD_FRAMES` frames before each unit (FrameModel's
context_frames seam), which it styles and carries first to warm the state, and discards. A unit's
output then depends on its window alone: a rank needs nothing from another, and a unit redone
after preemption comes out the same. BLEND and LEAD_FRAMES were chosen by measurement (README,
"Temporal consistency").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from videostyle.temporal.flow import gray, motion, shrunk, upscaled

if TYPE_CHECKING:
    import torch

    from videostyle.models.base import FrameTransform

# How much of the carried frame a visible pixel keeps.
BLEND = 0.5
# Frames before a unit styled to warm the state, then discarded: BLEND ** LEAD_FRAMES of the
# state a unit starts from (none at the video's start) is what a border lacks. Measured on Big
# Buck Bunny: 3 steadies the borders as much as one pass over the whole video does, 2 not quite.
LEAD_FRAMES = 3
# A pixel whose warped input differs from the input by more than this (luma levels) is not
# carried: the flow is wrong there, or the light changed.
PHOTO_LEVELS = 24.0
# A scene cut: less than this share of the picture is visible in the previous frame, or ...
CUT_VISIBLE = 0.5
# ... the luma histograms' Bhattacharyya distance exceeds this.
CUT_HISTOGRAM = 0.3
# DIS's preset for the flow the state is carried along, and the rows of the frames it is
# computed on (frames are shrunk by a whole factor to about this, then the flow is scaled back):
# at 640x360, 15 ms of CPU a frame instead of 27 at full size, for a warping error 0.39x the
# per-frame one instead of 0.35x.
FLOW_PRESET = "fast"
FLOW_ROWS = 180


def is_cut(previous: npt.NDArray[np.uint8], current: npt.NDArray[np.uint8], visible: float) -> bool:
    """Whether luma frame `current` starts a new shot after `previous` (`visible`: the share of
    its pixels the flow sees in `previous`)."""
    import cv2

    if visible < CUT_VISIBLE:
        return True
    hists = []
    for frame in (previous, current):
        hist = cv2.calcHist([frame], [0], None, [32], [0, 256])
        hists.append(cv2.normalize(hist, hist).flatten())
    return bool(cv2.compareHist(hists[0], hists[1], cv2.HISTCMP_BHATTACHARYYA) > CUT_HISTOGRAM)


def steady(
    inputs: npt.NDArray[np.uint8],
    styled: npt.NDArray[np.uint8],
    *,
    blend: float = BLEND,
    preset: str = FLOW_PRESET,
    flow_rows: int = FLOW_ROWS,
    cubic: bool = True,
) -> tuple[npt.NDArray[np.uint8], list[int]]:
    """`styled` (each of `inputs` styled on its own, [N, H, W, 3] uint8) steadied along the
    inputs' motion, and the indexes of the frames that start a new shot (the state restarted)."""
    out = np.empty_like(styled)
    state = styled[0].astype(np.float32)
    out[0] = styled[0]
    cuts: list[int] = []
    shape = inputs.shape[1:3]
    scale = max(1, shape[0] // flow_rows)
    # The flow, the masks and the cut are found on the input's luma shrunk `scale` times.
    previous = shrunk(gray(inputs[0]), scale)
    for t in range(1, len(styled)):
        current = shrunk(gray(inputs[t]), scale)
        frame = styled[t].astype(np.float32)
        m = motion(previous, current, preset)
        if is_cut(previous, current, m.visible_fraction):
            cuts.append(t)
            state = frame
        else:
            agree = np.abs(m.warp(previous).astype(np.int16) - current) < PHOTO_LEVELS
            m = upscaled(m, shape, m.visible & agree)
            weight = (blend * m.visible).astype(np.float32)[..., None]
            state = frame + weight * (m.warp(state, cubic=cubic) - frame)
        out[t] = np.clip(np.rint(state), 0, 255).astype(np.uint8)
        previous = current
    return out, cuts


class Steady:
    """A styling model's transform in the temporal mode (a UnitTransform: scoring hands it each
    unit with `lead` frames before it); called on a batch, it is the model's own transform."""

    def __init__(self, inner: FrameTransform, *, batch: int = 1, blend: float = BLEND) -> None:
        self.inner = inner
        self.batch = max(1, batch)
        self.blend = blend

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        return self.inner(frames)

    def warm_up(self, batch: int, height: int, width: int) -> None:
        self.inner.warm_up(batch, height, width)

    def unit(
        self, window: torch.Tensor, *, lead: int, count: int
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """The unit's frames, window[lead : lead + count], styled and steadied from the state
        the `lead` frames before it build; frames after it are not needed."""
        import torch

        frames = window[: lead + count]
        styled = torch.cat(
            [self.inner(frames[k : k + self.batch]) for k in range(0, len(frames), self.batch)]
        )
        steadied, cuts = steady(frames.numpy(), styled.numpy(), blend=self.blend)
        unit_cuts = [t - lead for t in cuts if t >= lead]
        return torch.from_numpy(steadied[lead:]), {"temporal": {"cuts": unit_cuts}}
