"""Every per-frame model by the name a job gives it. Adding a model is its module (a FrameModel
exposed as `MODEL`: videostyle.models.base) and one line in MODELS."""

from __future__ import annotations

import importlib
import json
from typing import TYPE_CHECKING, Any

from videostyle.errors import BadParameterError
from videostyle.models.base import FrameModel, FrameTransform, Options, Prepared

if TYPE_CHECKING:
    import torch

# name → the module whose MODEL it is; a module is imported only when a job names its model.
MODELS: dict[str, str] = {
    "multistyle26": "videostyle.models.multistyle26",  # the default (defaults.BUILTIN_MODEL)
    "checkpoint": "videostyle.models.checkpoint",
    "painting": "videostyle.models.painting",
    "anonymize": "videostyle.models.anonymize",
}

_MAX_OUTPUT_NAME = 200


def get_model(name: str) -> FrameModel:
    """The model registered as `name`; an unknown name is a bad parameter."""
    module = MODELS.get(name)
    if module is None:
        raise BadParameterError(
            f"bad parameter model={name!r}: unknown model; known: {', '.join(MODELS)}"
        )
    model = getattr(importlib.import_module(module), "MODEL", None)
    if not isinstance(model, FrameModel):
        raise TypeError(f"{module}.MODEL must be a FrameModel, not {type(model).__name__}")
    return model


def job_options(name: str, given: Options) -> dict[str, Any]:
    """A job's complete options for model `name`: its defaults, then what the job gives (None
    is not given), checked. BadParameterError for a bad value (the model's own check comes
    first: it explains a misplaced option best), an option the model does not take, or
    options that cannot be stored as JSON."""
    model = get_model(name)
    options = {**model.defaults, **{k: v for k, v in given.items() if v is not None}}
    model.check_options(options)
    unknown = [key for key in options if key not in model.defaults]
    if unknown:
        raise BadParameterError(
            f"bad parameter {unknown[0]}={options[unknown[0]]!r}: model {name} has no such "
            f"option; its options: {', '.join(model.defaults) or 'none'}"
        )
    try:
        json.dumps(options, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BadParameterError(f"bad parameter options={options!r}: not JSON ({exc})") from None
    return options


def output_name(name: str, options: Options) -> str:
    """The look's name in the output's path, as model `name` gives it: one path segment."""
    look = get_model(name).output_name(options)
    if (
        not look
        or look in (".", "..")
        or "/" in look
        or "\\" in look
        or not look.isprintable()
        or len(look) > _MAX_OUTPUT_NAME
    ):
        raise BadParameterError(
            f"bad parameter: model {name} names its output {look!r}, not one safe path segment "
            f"of at most {_MAX_OUTPUT_NAME} characters"
        )
    return look


def load_model(
    name: str,
    options: Options,
    *,
    device: torch.device,
    precision: str = "fp32",
    compiled: bool = False,
    prepared: Prepared = None,
) -> FrameTransform:
    """Model `name` checked and loaded outside a job (tests, benchmarks): nothing is prepared,
    `prepared` stands for what the model's `prepare` would have returned."""
    return get_model(name).load(
        job_options(name, options),
        prepared,
        device=device,
        precision=precision,
        compiled=compiled,
    )


def model_argument(value: str) -> tuple[str, dict[str, Any]]:
    """A `--model` value: a registered name, or, as before models had names, a TransformerNet
    checkpoint's path or az:// URL, which is the checkpoint model with that option."""
    if value not in MODELS and ("/" in value or "." in value):
        return "checkpoint", {"checkpoint": value}
    return value, {}
