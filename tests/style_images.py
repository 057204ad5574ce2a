"""Test-side style images: real photos from scikit-image saved as JPEG, PNG or WebP, and files
that only pretend to be images."""

import struct
import zlib
from pathlib import Path

from PIL import Image
from skimage import data


def save_photo(path: Path, name: str) -> Path:
    """scikit-image's photo `name` (coffee, chelsea, astronaut, ...) in the format of `path`'s
    suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(getattr(data, name)()).save(path, quality=90)
    return path


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    """A 60-byte PNG whose IHDR claims width x height RGB pixels (its one IDAT holds a row)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 4))
        + png_chunk(b"IEND", b"")
    )
