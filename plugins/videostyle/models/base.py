"""The seam every per-frame model implements; the steps know models only through it.

A model is a `FrameModel` subclass in a module of its own, exposed as the module's `MODEL` and
registered by name in `videostyle.models.registry`. Its life in a job:

- preprocess completes the job's options with the model's `defaults`, has `check_options` refuse
  a bad one before any work (`BadParameterError`: exit code 3, never retried, the video not
  quarantined), then runs `prepare` once. What `prepare` returns is stored with the job in the
  work container and named in the plan, so every rank and every retry uses exactly the same
  thing (a style vector, a copy of a checkpoint);
- every scoring rank calls `load` once, on its device and precision, and pushes batches of uint8
  RGB frames [N, H, W, 3] through the `FrameTransform` it returns, getting the same shape back;
- a model that needs frames beyond a unit's borders (carrying detections across them) says how
  many with `context_frames`: scoring then hands its transform's `unit` each unit's frames with
  up to that many neighbours on each side (fewer at the video's ends) and writes only the unit's
  own, and stores the JSON-able facts `unit` returns beside the unit;
- in the temporal mode (the plan's `temporal`, for a model whose `temporal` allows it) scoring
  wraps the transform in videostyle.temporal.steady.Steady, which styles each unit with a few
  frames before it and blends each frame with the previous one carried along the motion;
- publish names the output `<video>/<output_name(options)>.mp4`, and puts what `report` (and,
  from those per-unit facts, `report_units`) says of the job in the report.

Options are one JSON-able dict ({"style": "scream", "strength": 0.5}), the plan's `options`.
Importing this module is cheap (no torch): models import torch inside `prepare` and `load`, so
preprocess and publish can check and name a job without it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeAlias

from videostyle.errors import BadParameterError

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from videostyle.media.ffmpeg import MediaInfo
    from videostyle.settings import Settings
    from videostyle.storage import Stores

Options: TypeAlias = Mapping[str, Any]
# What `prepare` hands the ranks: raw bytes (stored as a .bin blob), a JSON-able dict (a .json
# blob) or nothing to store.
Prepared: TypeAlias = bytes | dict[str, Any] | None
# A strength's range (check_strength): 0 keeps the input as it is, 1 gives the full look.
MIN_STRENGTH, MAX_STRENGTH = 0, 1


class FrameTransform(Protocol):
    """A loaded model: uint8 RGB frames [N, H, W, 3] on the CPU in, the same shape and dtype out."""

    def __call__(self, frames: torch.Tensor) -> torch.Tensor: ...

    def warm_up(self, batch: int, height: int, width: int) -> None:
        """Run one batch of that shape now (compiling, kernel selection), before the clock runs."""


class UnitTransform(FrameTransform, Protocol):
    """A loaded model with `context_frames` > 0: it styles a unit at a time, seeing its
    neighbouring frames."""

    def unit(
        self, window: torch.Tensor, *, lead: int, count: int
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """The unit's frames window[lead : lead + count] styled (uint8 [count, H, W, 3]), with
        window[:lead] and window[lead + count:] the frames before and after it, and JSON-able
        facts about the unit (stored beside it for `FrameModel.report_units`)."""
        ...


@dataclass(frozen=True)
class JobContext:
    """What `prepare` may use: the job, its input (a local copy, probed) and the stores."""

    job_id: str
    video: str  # the input blob's name
    source: Path  # the local copy of the input video
    info: MediaInfo  # its probe: size, frame count and times, frame rate
    scratch: Path  # a folder of the model's own, removed after preprocess
    settings: Settings
    stores: Stores


class FrameModel(ABC):
    """One per-frame model. Subclasses set `defaults` and implement `check_options`, `load` and
    `output_name`; a model with something to do once per job overrides `prepare`."""

    # Every option the model takes, with its default (None: no default). preprocess fills in
    # what a job leaves out, and refuses a key that is not here.
    defaults: ClassVar[Mapping[str, Any]] = {}
    # Whether the temporal mode (videostyle.temporal) may steady the model's frames by blending
    # each with the previous one carried along the motion. False for a model whose every frame
    # must stand on its own (anonymize: a blend could drag a face's pixels out of its cover).
    temporal: ClassVar[bool] = True

    @abstractmethod
    def check_options(self, options: Options) -> None:
        """Raise BadParameterError for a bad value; `options` holds the defaults filled in (a
        key not in `defaults` is refused after this, generically)."""

    def prepare(self, options: Options, job: JobContext) -> Prepared:
        """Once per job, in preprocess; a BadInputError quarantines the video, a
        BadParameterError does not."""
        return None

    @abstractmethod
    def load(
        self,
        options: Options,
        prepared: Prepared,
        *,
        device: torch.device,
        precision: str,
        compiled: bool,
    ) -> FrameTransform:
        """The model on `device`, once per rank; `precision` is fp32, bf16 or fp16 (autocast),
        `compiled` asks for torch.compile. `prepared` is what `prepare` returned."""

    @abstractmethod
    def output_name(self, options: Options) -> str:
        """The look's name in the output's path: one safe path segment, e.g. `scream-s50`."""

    def context_frames(self, options: Options) -> int:
        """How many frames before and after each unit the model must see (0: none, and the
        transform styles batches of the unit alone); above 0, `load` returns a UnitTransform."""
        return 0

    def report(self, options: Options, prepared: Prepared) -> dict[str, Any]:
        """What the output's report says of the job's model beyond its options, JSON-able (publish
        puts it under `model_details`), e.g. the style image a vector was made from and its
        SHA-256. `prepared` is what `prepare` returned."""
        return {}

    def report_units(self, options: Options, units: list[dict[str, Any]]) -> dict[str, Any]:
        """More of the report's `model_details`, from the facts each unit's `UnitTransform.unit`
        returned, in unit order (empty for a model without context frames)."""
        return {}


def check_strength(strength: object) -> float:
    """A strength (a model's `strength` option, `options.get("strength")`) as a float: a number
    from MIN_STRENGTH (the input as it is) to MAX_STRENGTH (the full look), else
    BadParameterError. The one check of a strength (the models, Magenta's style vector); the
    process DAG's form takes its range from here."""
    if isinstance(strength, bool) or not isinstance(strength, int | float):
        raise BadParameterError(f"bad parameter strength={strength!r}: not a number")
    if not (math.isfinite(strength) and MIN_STRENGTH <= strength <= MAX_STRENGTH):
        raise BadParameterError(
            f"bad parameter strength={strength!r}: outside [{MIN_STRENGTH}, {MAX_STRENGTH}] "
            f"({MIN_STRENGTH} keeps the input, {MAX_STRENGTH} full)"
        )
    return float(strength)


def with_strength(look: str, strength: float) -> str:
    """`scream` at strength 0.5 → `scream-s50`; at full strength the look's own name."""
    return look if strength >= 1 else f"{look}-s{round(strength * 100)}"
