"""Optical flow between consecutive input frames, backward warping, and which pixels it sees.

The flow is OpenCV's DIS (Kroeger et al., 2016) on the frames' luma. `backward_flow(a, b)` is the
flow of frame b back to frame a: b(x) ≈ a(x + F(x)), so `warp(a, F)` brings a (or anything
aligned with it, such as its styled frame) onto b. A pixel of b is *visible* in a where the flow
there and the flow back agree (the forward-backward check of Sundaram et al., 2010, with the
bounds of Ruder et al., 2016): |F_b(x) + F_f(x + F_b(x))|² < 0.01 (|F_b|² + |F_f(x + F_b)|²) + 0.5.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    Image = npt.NDArray[np.uint8]  # [H, W, 3] RGB
    Flow = npt.NDArray[np.float32]  # [H, W, 2]: (dx, dy)
    Mask = npt.NDArray[np.bool_]  # [H, W]

# Sundaram's and Ruder's bounds of the forward-backward check.
CONSISTENCY_RATIO = 0.01
CONSISTENCY_SLACK = 0.5


def gray(image: Image) -> npt.NDArray[np.uint8]:
    """An RGB frame's luma, what the flow is computed on."""
    import cv2

    return np.asarray(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY), np.uint8)


def _dis(preset: str) -> Any:
    import cv2

    # One thread: ranks share the machine's cores, and the result must not depend on them.
    cv2.setNumThreads(1)
    create = getattr(cv2, "DISOpticalFlow_create")  # noqa: B009 (not in OpenCV's stubs)
    return create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{preset.upper()}"))


def flow(frm: npt.NDArray[np.uint8], to: npt.NDArray[np.uint8], preset: str = "medium") -> Flow:
    """Flow F on `frm`'s grid (luma frames) with frm(x) ≈ to(x + F(x)); DIS's `preset` is
    ultrafast, fast or medium (the most accurate, 5 times slower than fast)."""
    result: Flow = _dis(preset).calc(frm, to, None)
    return result


@functools.lru_cache(maxsize=4)
def _grid(height: int, width: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    ys, xs = np.indices((height, width), dtype=np.float32)
    return xs, ys


def _maps(flow_back: Flow) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Where each pixel of b comes from in a: x + F(x), as cv2.remap's two maps."""
    xs, ys = _grid(*flow_back.shape[:2])
    return xs + flow_back[..., 0], ys + flow_back[..., 1]


def _remap(image: npt.NDArray[Any], maps: tuple[Any, Any], cubic: bool) -> npt.NDArray[Any]:
    import cv2

    result: npt.NDArray[Any] = cv2.remap(
        image,
        maps[0],
        maps[1],
        interpolation=cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return result


def warp(image: npt.NDArray[Any], flow_back: Flow, *, cubic: bool = False) -> npt.NDArray[Any]:
    """`image` (on frame a's grid) moved onto frame b's: result(x) = image(x + F(x)), bilinear
    (bicubic: sharper, for an image warped again and again), edges replicated (those pixels are
    marked not visible)."""
    return _remap(image, _maps(flow_back), cubic)


def _squared(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    x, y = vectors[..., 0], vectors[..., 1]
    result: npt.NDArray[np.float32] = x * x + y * y
    return result


def consistent(flow_back: Flow, flow_fwd: Flow, maps: tuple[Any, Any] | None = None) -> Mask:
    """The forward-backward check: where b's pixels are seen in a (not occluded, not out of the
    picture, the flow trustworthy). `maps`: _maps(flow_back), if already made."""
    height, width = flow_back.shape[:2]
    tx, ty = _maps(flow_back) if maps is None else maps
    inside = (tx >= 0) & (tx <= width - 1) & (ty >= 0) & (ty <= height - 1)
    fwd_at = _remap(flow_fwd, (tx, ty), False)  # F_f(x + F_b(x))
    bound = CONSISTENCY_RATIO * (_squared(flow_back) + _squared(fwd_at)) + CONSISTENCY_SLACK
    mask: Mask = (_squared(flow_back + fwd_at) < bound) & inside
    return mask


@dataclass(frozen=True)
class Motion:
    """How frame b follows frame a: the flow that warps a onto b and where it can be trusted."""

    flow_back: Flow  # on b's grid: b(x) ≈ a(x + flow_back(x))
    visible: Mask  # b's pixels seen in a
    maps: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]  # _maps(flow_back)

    def warp(self, image: npt.NDArray[Any], *, cubic: bool = False) -> npt.NDArray[Any]:
        """`image`, aligned with frame a, moved onto frame b."""
        return _remap(image, self.maps, cubic)

    @property
    def visible_fraction(self) -> float:
        return float(self.visible.mean())


def motion(
    a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8], preset: str = "medium", scale: int = 1
) -> Motion:
    """How luma frame b follows luma frame a (both [H, W] uint8), by DIS flow at `preset`,
    computed on the frames shrunk `scale` times (then brought back to their size): cheaper."""
    if scale > 1:
        return upscaled(motion(shrunk(a, scale), shrunk(b, scale), preset), a.shape[:2])
    back = flow(b, a, preset)
    maps = _maps(back)
    return Motion(flow_back=back, visible=consistent(back, flow(a, b, preset), maps), maps=maps)


def shrunk(image: npt.NDArray[np.uint8], scale: int) -> npt.NDArray[np.uint8]:
    """`image` `scale` times smaller (area-averaged); itself at scale 1."""
    import cv2

    if scale <= 1:
        return image

    height, width = image.shape[:2]
    size = (max(1, width // scale), max(1, height // scale))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)


def upscaled(small: Motion, shape: tuple[int, ...], visible: Mask | None = None) -> Motion:
    """A motion found on shrunk frames, at the frames' own `shape` (height, width); `visible`
    (on the shrunk grid) instead of its own mask, if given."""
    import cv2

    height, width = shape[0], shape[1]
    mask = small.visible if visible is None else visible
    if small.flow_back.shape[:2] == (height, width):
        return Motion(flow_back=small.flow_back, visible=mask, maps=small.maps)
    ratio = np.array([width / small.flow_back.shape[1], height / small.flow_back.shape[0]])
    resized = cv2.resize(small.flow_back, (width, height), interpolation=cv2.INTER_LINEAR)
    back: Flow = (resized * ratio.astype(np.float32)).astype(np.float32)
    big = cv2.resize(mask.view(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    return Motion(flow_back=back, visible=big.astype(bool), maps=_maps(back))
