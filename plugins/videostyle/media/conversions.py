"""What the output changes of its source on the way, in the words the report lists it in.

The output is H.264 in MP4 that players open everywhere: 8-bit, 4:2:0, progressive, upright,
with MP4's audio codecs. A source that is none of these is converted, and every conversion is
named, so a user sees each liberty taken (the report's `changes`). Timing is never one: every
frame keeps its source timestamp, at a constant rate or not.
"""

import re

from videostyle.media.ffmpeg import MediaInfo

OUTPUT_PIX_FMT = "yuv420p"
# H.264 crops the coded picture by whole chroma samples: 4:2:0 (and 4:2:2 across) only to even
# sides, so an odd side keeps its exact size only in 4:4:4, whose crop unit is one pixel.
ODD_SIZE_PIX_FMT = "yuv444p"

FIELD_ORDERS = {
    "tt": "top field first",
    "bb": "bottom field first",
    "tb": "top field coded first, bottom shown first",
    "bt": "bottom field coded first, top shown first",
}


def output_pix_fmt(info: MediaInfo) -> str:
    """The pixel format the units are coded in."""
    return ODD_SIZE_PIX_FMT if info.width % 2 or info.height % 2 else OUTPUT_PIX_FMT


def bit_depth(pix_fmt: str) -> int:
    """Bits per sample of an ffmpeg pixel format: yuv420p10le → 10, yuv420p → 8."""
    found = re.search(r"(\d+)(le|be)$", pix_fmt)
    return int(found[1]) if found and int(found[1]) <= 16 else 8


def chroma(pix_fmt: str) -> str | None:
    """The chroma subsampling of an ffmpeg pixel format, None when it has no colour planes."""
    if re.match(r"(yuvj?|yuva)420|nv12|nv21|p010|p016", pix_fmt):
        return "4:2:0"
    if re.match(r"(yuvj?|yuva)422|nv16|yuyv422|uyvy422|y210", pix_fmt):
        return "4:2:2"
    if re.match(r"(yuvj?|yuva)444|gbr|rgb|bgr|argb|abgr|x2rgb", pix_fmt):
        return "4:4:4"
    return None


def changes(info: MediaInfo, *, audio_copied: bool) -> tuple[str, ...]:
    """Every way the output will differ from the source but for the style, in words."""
    found = []
    if info.interlaced:
        found.append(
            f"deinterlaced ({FIELD_ORDERS[info.field_order]}) with bwdif, one frame per frame"
        )
    if info.rotation % 360:
        found.append(
            f"turned upright: the {abs(info.rotation)}° turn its display matrix asks for is "
            "applied to the pixels"
        )
    if (bits := bit_depth(info.pix_fmt)) > 8:
        found.append(f"{bits}-bit samples reduced to 8-bit")
    source_chroma, coded = chroma(info.pix_fmt), output_pix_fmt(info)
    if coded == ODD_SIZE_PIX_FMT:
        found.append(
            f"coded in H.264 4:4:4 (High 4:4:4 Predictive profile) to keep the odd size "
            f"{info.width}x{info.height} exactly: 4:2:0 codes even sides only. Safari, iOS and "
            "hardware decoders may not play it"
        )
    elif source_chroma not in (None, "4:2:0"):
        found.append(f"chroma {source_chroma} reduced to 4:2:0")
    if info.audio_streams and not audio_copied:
        found.append(
            f"audio re-encoded to AAC: {', '.join(info.audio_codecs)} cannot go into MP4 as it is"
        )
    return tuple(found)
