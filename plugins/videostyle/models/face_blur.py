"""Anonymizing detected faces: blur (or fill) each box with a margin, carry boxes across
neighbouring frames so a face the detector misses for a frame or two never flashes into view,
and count faces per frame for the report.

Boxes are float rows (x0, y0, x1, y1[, score]) in pixels, one [k, 4+] tensor per frame, as
`videostyle.models.centerface.FaceDetector.detect` returns them. Nothing here needs the network,
and importing this module does not import torch: a job's options are checked (FaceBlur refuses
bad ones) before any model is loaded.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from videostyle.errors import BadParameterError

if TYPE_CHECKING:
    import torch
    from torch import Tensor

MODES = ("blur", "fill")
SHAPES = ("ellipse", "box")
# The ellipse's edge fades from fully covered at this fraction of its radii to untouched at 1:
# with the default margin the face box's corners (at 0.88) are still fully covered.
FEATHER_FROM = 0.9
# Carry reach by default: a face missed for up to this many frames in a row stays covered.
CARRY_FRAMES = 2


@dataclass(frozen=True)
class FaceBlur:
    """Covers each face box, grown by `margin` times its width (height) on the left and right
    (top and bottom) as deface's --mask-scale 1.3 does, with an ellipse inscribed in the grown
    box or the whole grown box. "blur" is a Gaussian blur whose sigma is `sigma` times the face
    box's longer side (deface blurs with a box filter half the grown box wide, about 0.23 of the
    face's side), so a face is as unrecognisable close up as far away; "fill" paints `color`
    (RGB). Construction checks the options: BadParameterError for a bad one."""

    mode: Literal["blur", "fill"] = "blur"
    shape: Literal["ellipse", "box"] = "ellipse"
    margin: float = 0.3
    sigma: float = 0.2
    color: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise BadParameterError(f"face cover must be one of {', '.join(MODES)}: {self.mode!r}")
        if self.shape not in SHAPES:
            raise BadParameterError(
                f"face shape must be one of {', '.join(SHAPES)}: {self.shape!r}"
            )
        if not (math.isfinite(self.margin) and 0 <= self.margin <= 2):
            raise BadParameterError(f"face margin must be between 0 and 2, got {self.margin}")
        if not (math.isfinite(self.sigma) and 0.02 <= self.sigma <= 1):
            raise BadParameterError(
                f"blur sigma must be between 0.02 and 1 face sizes, got {self.sigma}"
            )
        if len(self.color) != 3 or not all(type(c) is int and 0 <= c <= 255 for c in self.color):
            raise BadParameterError(f"fill color must be three integers 0-255, got {self.color}")

    def __call__(self, frames: Tensor, boxes: Sequence[Tensor]) -> Tensor:
        """A copy of uint8 RGB frames [N, H, W, 3] (any device) with every box of boxes[i]
        covered in frame i."""
        import torch

        with torch.inference_mode():
            return self._covered(frames, boxes)

    def _covered(self, frames: Tensor, boxes: Sequence[Tensor]) -> Tensor:
        import torch

        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected uint8 frames [N,H,W,3], got {frames.dtype} {frames.shape}")
        if len(boxes) != frames.shape[0]:
            raise ValueError(f"{len(boxes)} box lists for {frames.shape[0]} frames")
        out = frames.clone()
        for frame, original, frame_boxes in zip(out, frames, boxes, strict=True):
            rows = frame_boxes[:, :4].tolist()
            if not rows:
                continue
            # How covered each pixel is so far. Boxes go smallest (weakest blur) first, each
            # covering from the original frame and taking the pixels it covers at least as
            # much: overlapping boxes (a face's boxes carried from its neighbours) give the
            # strongest of their covers, never a blur of a blur, and a box twice is a box once.
            coverage = torch.zeros(frame.shape[:2], device=frame.device)
            for box in sorted(rows, key=lambda b: max(b[2] - b[0], b[3] - b[1])):
                self._cover(frame, original, coverage, box)
        return out

    def _cover(self, frame: Tensor, original: Tensor, coverage: Tensor, box: list[float]) -> None:
        """Cover one box of `original` into `frame` ([H, W, 3] uint8) where it covers at least
        as much as `coverage` ([H, W], updated) says earlier boxes did."""
        import torch

        height, width = frame.shape[:2]
        x0, y0, x1, y1 = box
        grow_x, grow_y = self.margin * (x1 - x0), self.margin * (y1 - y0)
        gx0, gy0, gx1, gy1 = x0 - grow_x, y0 - grow_y, x1 + grow_x, y1 + grow_y
        left, top = max(0, math.floor(gx0)), max(0, math.floor(gy0))
        right, bottom = min(width, math.ceil(gx1)), min(height, math.ceil(gy1))
        if right <= left or bottom <= top:
            return
        alpha = self._alpha(frame.device, (gx0, gy0, gx1, gy1), (left, top, right, bottom))
        region = original[top:bottom, left:right].float()
        if self.mode == "fill":
            cover = torch.tensor(self.color, dtype=torch.float32, device=frame.device)
        else:
            sigma = max(1.0, self.sigma * max(x1 - x0, y1 - y0))
            pad = math.ceil(3 * sigma)
            ctop, cleft = max(0, top - pad), max(0, left - pad)
            context = original[ctop : min(height, bottom + pad), cleft : min(width, right + pad)]
            inside = (top - ctop, bottom - ctop, left - cleft, right - cleft)
            cover = gaussian_blur(context.float().permute(2, 0, 1), sigma, inside).permute(1, 2, 0)
        mixed = (region + alpha[..., None] * (cover - region)).round_().clamp_(0, 255)
        covered = coverage[top:bottom, left:right]
        take = (alpha >= covered)[..., None]
        window = frame[top:bottom, left:right]
        window.copy_(torch.where(take, mixed.to(torch.uint8), window))
        torch.maximum(covered, alpha, out=covered)

    def _alpha(
        self,
        device: torch.device,
        grown: tuple[float, float, float, float],
        window: tuple[int, int, int, int],
    ) -> Tensor:
        """How much of the cover each pixel of the window takes: 1 over the grown box or, for
        the ellipse, inside FEATHER_FROM of its radii, fading to 0 at its edge."""
        import torch

        left, top, right, bottom = window
        if self.shape == "box":
            return torch.ones((bottom - top, right - left), device=device)
        gx0, gy0, gx1, gy1 = grown
        cx, cy = (gx0 + gx1) / 2, (gy0 + gy1) / 2
        rx, ry = max((gx1 - gx0) / 2, 0.5), max((gy1 - gy0) / 2, 0.5)
        # Pixel centres.
        ys = (torch.arange(top, bottom, device=device, dtype=torch.float32) + 0.5 - cy) / ry
        xs = (torch.arange(left, right, device=device, dtype=torch.float32) + 0.5 - cx) / rx
        radius = torch.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
        return ((1 - radius) / (1 - FEATHER_FROM)).clamp_(0, 1)


def gaussian_blur(
    image: Tensor, sigma: float, window: tuple[int, int, int, int] | None = None
) -> Tensor:
    """A float [C, H, W] image blurred with a Gaussian of `sigma` pixels, edges replicated;
    only its `window` (top, bottom, left, right) if given.

    Large sigmas are done at reduced size (averaging blocks of about sigma/2 pixels, a
    Gaussian of about 2 pixels there, bilinear back up to the window alone): the cost is that
    of a small image whatever the face's size, and what is blurred moves by up to sigma/4 (to
    its block's centre)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    height, width = image.shape[1:]
    top, bottom, left, right = window or (0, height, 0, width)
    factor = max(1, int(sigma / 2))
    small = image[None]
    if factor > 1:
        small = F.avg_pool2d(small, factor, ceil_mode=True)  # edge blocks: their pixels' mean
    small_sigma = sigma / factor
    radius = math.ceil(3 * small_sigma)
    taps = torch.arange(-radius, radius + 1, device=image.device, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (taps / small_sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = small.shape[1]
    small = F.pad(small, (radius, radius, radius, radius), mode="replicate")
    small = F.conv2d(small, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    small = F.conv2d(small, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    if factor == 1:
        return small[0, :, top:bottom, left:right]
    # Upsample only the blocks under the window, and one more each side: bilinear reads a
    # block's neighbours, so the window comes out as if the whole image had been upsampled.
    row, col = max(0, top // factor - 1), max(0, left // factor - 1)
    small = small[:, :, row : bottom // factor + 2, col : right // factor + 2]
    up = F.interpolate(small, scale_factor=factor, mode="bilinear", align_corners=False)
    y0, x0 = top - row * factor, left - col * factor
    return up[0, :, y0 : y0 + bottom - top, x0 : x0 + right - left]


def carry_window(first: int, count: int, total: int, k: int = CARRY_FRAMES) -> tuple[int, int]:
    """Frames [start, stop) whose detections a unit of `count` frames from `first` (of a video
    of `total`) needs for carry_detections: k beyond each end, within the video."""
    if not (first >= 0 and count > 0 and first + count <= total and k >= 0):
        raise ValueError(f"bad unit: first={first} count={count} total={total} k={k}")
    return max(0, first - k), min(total, first + count + k)


def carry_detections(
    window: Sequence[Tensor], *, lead: int, count: int, k: int = CARRY_FRAMES
) -> list[Tensor]:
    """Boxes to cover in each of `count` frames, from per-frame detections of a window of frames.

    window[j] holds the detections ([n, 4+] rows) of frame window_start + j; the unit's frames
    are window[lead : lead + count], so window[:lead] and window[lead + count:] are context from
    beyond the unit's borders (up to k each side; fewer at the video's ends, as carry_window
    gives). Frame i gets its own boxes followed by those of every frame at most k away that
    the window holds; never a box from further away. k = 0 gives the detections unchanged."""
    import torch

    if k < 0 or lead < 0 or count < 0 or lead + count > len(window):
        raise ValueError(f"bad window: {len(window)} frames, lead={lead} count={count} k={k}")
    carried = []
    for i in range(lead, lead + count):
        near = sorted(range(max(0, i - k), min(len(window), i + k + 1)), key=lambda j: abs(j - i))
        carried.append(torch.cat([window[j] for j in near]))
    return carried


def faces_per_frame(detections: Sequence[Tensor]) -> list[int]:
    """How many faces the detector found in each frame (before carrying)."""
    return [int(d.shape[0]) for d in detections]


@dataclass(frozen=True)
class FaceCounts:
    """Faces per frame over a video, for the report."""

    frames: int
    min: int
    median: float
    max: int
    frames_without_faces: int

    @classmethod
    def of(cls, counts: Sequence[int]) -> FaceCounts:
        """From every frame's count (faces_per_frame of each unit, concatenated)."""
        if not counts:
            return cls(frames=0, min=0, median=0.0, max=0, frames_without_faces=0)
        return cls(
            frames=len(counts),
            min=min(counts),
            median=float(statistics.median(counts)),
            max=max(counts),
            frames_without_faces=sum(1 for c in counts if c == 0),
        )
