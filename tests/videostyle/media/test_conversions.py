"""Every way the output differs from its source is named, and nothing else."""

from dataclasses import replace
from fractions import Fraction

import pytest

from videostyle.media.conversions import bit_depth, changes, chroma, output_pix_fmt
from videostyle.media.ffmpeg import MediaInfo

PLAIN = MediaInfo(
    width=640,
    height=360,
    frame_pts=(0, 1),
    time_base=Fraction(1, 25),
    frame_rate=Fraction(25),
    constant_frame_rate=True,
    audio_streams=1,
    audio_codecs=("aac",),
    duration_s=0.08,
    pix_fmt="yuv420p",
    field_order="progressive",
    rotation=0,
)


@pytest.mark.parametrize(
    ("pix_fmt", "bits", "subsampling"),
    [
        ("yuv420p", 8, "4:2:0"),
        ("yuvj420p", 8, "4:2:0"),
        ("yuv420p10le", 10, "4:2:0"),
        ("yuv422p10le", 10, "4:2:2"),
        ("yuv444p12be", 12, "4:4:4"),
        ("gbrp", 8, "4:4:4"),
        ("p010le", 10, "4:2:0"),
        ("gray", 8, None),
    ],
)
def test_pixel_formats_are_read_for_depth_and_chroma(
    pix_fmt: str, bits: int, subsampling: str | None
) -> None:
    assert (bit_depth(pix_fmt), chroma(pix_fmt)) == (bits, subsampling)


def test_a_plain_source_is_changed_in_nothing_but_style() -> None:
    assert changes(PLAIN, audio_copied=True) == ()
    assert changes(replace(PLAIN, constant_frame_rate=False), audio_copied=True) == ()
    assert changes(replace(PLAIN, audio_streams=0, audio_codecs=()), audio_copied=False) == ()


def test_every_change_is_named_once() -> None:
    source = replace(
        PLAIN,
        width=641,
        height=359,
        pix_fmt="yuv422p10le",
        field_order="bb",
        rotation=-90,
        audio_codecs=("pcm_s16le",),
    )
    assert output_pix_fmt(source) == "yuv444p"
    assert changes(source, audio_copied=False) == (
        "deinterlaced (bottom field first) with bwdif, one frame per frame",
        "turned upright: the 90° turn its display matrix asks for is applied to the pixels",
        "10-bit samples reduced to 8-bit",
        "coded in H.264 4:4:4 (High 4:4:4 Predictive profile) to keep the odd size 641x359 "
        "exactly: 4:2:0 codes even sides only. Safari, iOS and hardware decoders may not play it",
        "audio re-encoded to AAC: pcm_s16le cannot go into MP4 as it is",
    )


@pytest.mark.parametrize("size", [(640, 359), (641, 360), (175, 143)])
def test_an_odd_side_is_coded_in_4_4_4(size: tuple[int, int]) -> None:
    width, height = size
    assert output_pix_fmt(replace(PLAIN, width=width, height=height)) == "yuv444p"
    assert output_pix_fmt(PLAIN) == "yuv420p"
