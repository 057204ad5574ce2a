"""Style images: real photos in every accepted format and odd sizes read; everything else refused
with BadInputError naming the file and the problem, absurd sizes before any pixel is decoded."""

import io
import re
import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageFile
from skimage import data

from tests.style_images import png_chunk, png_declaring
from videostyle.errors import BadInputError
from videostyle.media.images import MAX_PIXELS, decode_style_image, read_style_image

RGB = npt.NDArray[np.uint8]


def photo(name: str) -> RGB:
    image: RGB = getattr(data, name)()
    return image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def write(path: Path, payload: bytes) -> Path:
    path.write_bytes(payload)
    return path


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real small JPEG with its SOF0 frame header rewritten to claim width x height."""
    raw = bytearray(encode(Image.fromarray(photo("coffee")[:16, :16]), "JPEG"))
    sof = raw.index(b"\xff\xc0")
    raw[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(raw)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every pixel decode Pillow starts (PNG and JPEG decode in ImageFile.load)."""
    calls: list[str] = []
    load = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> object:
        calls.append(f"{self.format} {self.size}")
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return calls


# --- real photos, every format, odd sizes -------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "suffix", "name", "size", "options", "max_mean_error"),
    [
        ("PNG", ".png", "coffee", (299, 397), {}, 0.0),
        ("JPEG", ".jpg", "astronaut", (509, 333), {"quality": 95}, 3.0),
        ("WEBP", ".webp", "chelsea", (129, 257), {"quality": 90}, 4.0),
        ("WEBP", ".webp", "rocket", (333, 211), {"lossless": True}, 0.0),
    ],
)
def test_real_photos_of_odd_sizes_are_read_as_rgb(
    tmp_path: Path,
    fmt: str,
    suffix: str,
    name: str,
    size: tuple[int, int],
    options: dict[str, object],
    max_mean_error: float,
) -> None:
    width, height = size
    original = photo(name)[:height, :width]
    path = write(tmp_path / f"style{suffix}", encode(Image.fromarray(original), fmt, **options))
    for image in (read_style_image(path), decode_style_image(path.read_bytes(), "blob")):
        assert image.shape == (height, width, 3)
        assert image.dtype == np.uint8
        assert np.abs(image.astype(float) - original).mean() <= max_mean_error


def test_a_grey_photo_becomes_three_equal_channels(tmp_path: Path) -> None:
    grey = photo("camera")[:101, :77]
    image = read_style_image(write(tmp_path / "camera.png", encode(Image.fromarray(grey), "PNG")))
    assert image.shape == (101, 77, 3)
    assert (image == grey[..., None]).all()


def test_sixteen_bit_grey_is_rescaled_not_clipped(tmp_path: Path) -> None:
    levels = np.array([[0, 32896, 65535]], dtype=np.uint16)
    path = write(tmp_path / "deep.png", encode(Image.fromarray(levels), "PNG"))
    assert read_style_image(path)[0, :, 0].tolist() == [0, 128, 255]


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = (255, 0, 0)  # left half red
    stored[:, 20:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = write(
        tmp_path / "rotated.jpg", encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif)
    )
    image = read_style_image(path).astype(int)
    assert image.shape == (40, 20, 3)  # upright: portrait
    assert (np.abs(image[:15] - (255, 0, 0)).max(axis=2) < 40).all()  # red on top
    assert (np.abs(image[25:] - (0, 0, 255)).max(axis=2) < 40).all()  # blue below


def test_transparency_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.array([[[0, 0, 0, 0], [255, 0, 0, 128], [0, 0, 255, 255]]], dtype=np.uint8)
    image = read_style_image(write(tmp_path / "a.png", encode(Image.fromarray(rgba), "PNG")))
    assert image[0, 0].tolist() == [255, 255, 255]  # fully transparent black: paper white
    assert np.abs(image[0, 1].astype(int) - (255, 127, 127)).max() <= 1  # half red over white
    assert image[0, 2].tolist() == [0, 0, 255]  # opaque: unchanged

    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 0, 0, 0, 255, 0])
    palette.putpixel((0, 0), 0)
    palette.putpixel((1, 0), 1)
    png = encode(palette, "PNG", transparency=0)
    assert decode_style_image(png, "p.png").tolist() == [[[255, 255, 255], [0, 255, 0]]]


def test_an_animated_image_gives_its_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    payload = encode(frames[0], "WEBP", lossless=True, save_all=True, append_images=frames[1:])
    image = decode_style_image(payload, "anim.webp")
    assert image.shape == (8, 8, 3)
    assert (image == (255, 0, 0)).all()


# --- refused inputs -----------------------------------------------------------------------------


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.jpg", b"")
    with pytest.raises(BadInputError, match="is empty") as caught:
        read_style_image(path)
    assert str(path) in str(caught.value)
    with pytest.raises(BadInputError, match=r"style image styles/empty\.png is empty"):
        decode_style_image(b"", "styles/empty.png")


def test_a_missing_file_or_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        read_style_image(tmp_path / "absent.png")
    with pytest.raises(BadInputError, match="is a directory"):
        read_style_image(tmp_path)


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("notes.png", b"this is a text file, not a painting\n" * 10),
        ("clip.jpg", b"\x00\x00\x00\x20ftypisom" + bytes(200)),  # an MP4 header
        ("anim.gif", encode(Image.new("RGB", (8, 8)), "GIF")),  # an image, not an accepted one
        ("picture.bmp", encode(Image.new("RGB", (8, 8)), "BMP")),
    ],
)
def test_what_is_not_a_jpeg_png_or_webp_is_refused(
    tmp_path: Path, name: str, payload: bytes
) -> None:
    path = write(tmp_path / name, payload)
    with pytest.raises(BadInputError, match="is not a JPEG, PNG or WebP image") as caught:
        read_style_image(path)
    assert str(path) in str(caught.value)


def damaged(kind: str) -> bytes:
    if kind == "IHDR cut short":  # Image.open raises ValueError
        ihdr = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)[:10]
        return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")
    if kind == "JPEG header cut":  # Image.open raises OSError
        return encode(Image.fromarray(photo("coffee")), "JPEG")[:200]
    if kind == "WebP header cut":  # Image.open raises OSError
        return encode(Image.fromarray(photo("coffee")), "WEBP")[:40]
    if kind == "JPEG data cut":  # load raises OSError
        whole = encode(Image.fromarray(photo("astronaut")), "JPEG", quality=90)
        return whole[: len(whole) // 2]
    png = bytearray(encode(Image.fromarray(photo("coffee")), "PNG"))
    first = png.index(b"IDAT")
    if kind == "PNG data zeroed":  # load raises OSError
        png[first + 100 : first + 400] = bytes(300)
    elif kind == "PNG chunk type garbled":  # load raises SyntaxError
        second = png.index(b"IDAT", first + 4)
        png[second : second + 4] = b"\xffl\x08\xd8"
    return bytes(png)


@pytest.mark.parametrize(
    ("kind", "where"),
    [
        ("IHDR cut short", "damaged header"),
        ("JPEG header cut", "damaged header"),
        ("WebP header cut", "damaged header"),
        ("JPEG data cut", r"\(JPEG, 512x512\)"),
        ("PNG data zeroed", r"\(PNG, 600x400\)"),
        ("PNG chunk type garbled", r"\(PNG, 600x400\)"),
    ],
)
def test_damaged_files_are_refused_as_undecodable(tmp_path: Path, kind: str, where: str) -> None:
    path = write(tmp_path / "damaged", damaged(kind))
    with pytest.raises(BadInputError, match="cannot be decoded") as caught:
        read_style_image(path)
    assert str(path) in str(caught.value)
    assert re.search(where, str(caught.value))


# Pillow's own guard refuses 50000x50000 (2.5 G pixels) inside Image.open; 9000x9000 (81 MP,
# under Pillow's 89 MP warning) is refused by ours; 10000x10000 (100 MP) by Pillow's warning,
# made an error. In each case no decode starts, so nothing near width x height is allocated.
@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("bomb.png", png_declaring(50000, 50000)),
        ("big.png", png_declaring(9000, 9000)),
        ("huge.png", png_declaring(10000, 10000)),
        ("bomb.jpg", jpeg_declaring(60000, 60000)),
        ("big.jpg", jpeg_declaring(9000, 9000)),
    ],
)
def test_absurd_declared_dimensions_are_refused_before_decoding(
    tmp_path: Path,
    decodes: list[str],
    recwarn: pytest.WarningsRecorder,
    name: str,
    payload: bytes,
) -> None:
    assert len(payload) < 1000
    path = write(tmp_path / name, payload)
    with pytest.raises(BadInputError, match=r"declares .* refused before decoding") as caught:
        read_style_image(path)
    assert str(path) in str(caught.value)
    assert decodes == []
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_the_limit_is_what_the_message_says(tmp_path: Path) -> None:
    assert MAX_PIXELS == 8192 * 8192
    with pytest.raises(BadInputError, match=r"declares 8193x8192 = 67,117,056 pixels"):
        read_style_image(write(tmp_path / "over.png", png_declaring(8193, 8192)))
    # At the limit the header passes and decoding starts (and fails: the pixels are not there).
    with pytest.raises(BadInputError, match="cannot be decoded"):
        read_style_image(write(tmp_path / "at.png", png_declaring(8192, 8192)))
