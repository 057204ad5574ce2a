"""`checkpoint`: a TransformerNet of pytorch/examples' fast_neural_style (`candy.pth`, ...),
trained elsewhere; the checkpoint is the style.

Options: `checkpoint`, a local path or an az://container/name URL, and `strength`. Preprocess
copies the checkpoint into the job (and refuses one that does not load), so every rank and every
retry runs the same weights, whatever happens to the original afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

from videostyle.defaults import BUILTIN_MODEL
from videostyle.errors import BadInputError, BadParameterError
from videostyle.models.base import (
    FrameModel,
    FrameTransform,
    JobContext,
    Options,
    Prepared,
    check_strength,
    with_strength,
)
from videostyle.storage import BlobStore

if TYPE_CHECKING:
    import torch


class Checkpoint(FrameModel):
    defaults: ClassVar[Mapping[str, Any]] = {"checkpoint": None, "strength": 1.0}

    def check_options(self, options: Options) -> None:
        checkpoint = options.get("checkpoint")
        if style := options.get("style"):
            raise BadParameterError(
                f"bad parameter style={style!r}: checkpoint {checkpoint} has its own style; "
                f"styles are for the built-in {BUILTIN_MODEL}"
            )
        if not isinstance(checkpoint, str) or not checkpoint:
            raise BadParameterError(
                f"bad parameter checkpoint={checkpoint!r}: the checkpoint model needs a "
                "TransformerNet .pth file's path or az:// URL"
            )
        check_strength(options.get("strength"))

    def prepare(self, options: Options, job: JobContext) -> Prepared:
        from videostyle.models.weights import load_transformer_net

        checkpoint = options["checkpoint"]
        try:
            local = _fetch(checkpoint, job)
            load_transformer_net(local)  # refused now, not on every rank
        except BadInputError as exc:  # the parameter is wrong, not the video
            raise BadParameterError(f"bad parameter checkpoint={checkpoint!r}: {exc}") from None
        return local.read_bytes()

    def load(
        self,
        options: Options,
        prepared: Prepared,
        *,
        device: torch.device,
        precision: str,
        compiled: bool,
    ) -> FrameTransform:
        from videostyle.models.style_runner import StyleRunner, on_device
        from videostyle.models.weights import load_transformer_net

        if not isinstance(prepared, bytes):
            raise TypeError(f"the checkpoint model loads the prepared checkpoint, not {prepared!r}")
        return StyleRunner(
            on_device(load_transformer_net(prepared), device),
            pixel_max=255.0,
            strength=check_strength(options.get("strength")),
            device=device,
            precision=precision,
            compiled=compiled,
        )

    def output_name(self, options: Options) -> str:
        return with_strength(
            PurePosixPath(options["checkpoint"]).stem, check_strength(options.get("strength"))
        )


MODEL = Checkpoint()


def _fetch(checkpoint: str, job: JobContext) -> Path:
    """A local file of the checkpoint: the path itself, or a download of the URL."""
    if "://" not in checkpoint:
        path = Path(checkpoint)
        if not path.is_file():
            raise BadInputError("no such file")
        return path
    url, _, name = checkpoint.rpartition("/")
    try:
        return BlobStore(url, job.settings).download(name, job.scratch / "checkpoint.pth")
    except FileNotFoundError:
        raise BadInputError("no such blob") from None
