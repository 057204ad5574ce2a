"""A video with an odd side comes out at exactly its size, every pixel of it styled: the last
row and column are the model's own output at the true size, not padding."""

from pathlib import Path

import numpy as np
import pytest

from tests.media import decode_rgb, make_clip, stream_info
from tests.videostyle.runs import mean_difference, run_styled, styled_directly

pytestmark = pytest.mark.integration

FRAMES = 6


@pytest.mark.parametrize(
    ("size", "codec", "pix_fmt", "container"),
    [
        ((175, 143), "libvpx-vp9", "yuv420p", "webm"),  # H.264 has no odd 4:2:0: VP9 does
        ((175, 143), "libx264", "yuv444p", "mp4"),
        ((641, 359), "libvpx-vp9", "yuv420p", "webm"),
        ((641, 359), "libx264", "yuv444p", "mp4"),
    ],
    ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else str(v),
)
def test_odd_sized_video_keeps_its_size_and_is_styled_to_the_edge(
    size: tuple[int, int], codec: str, pix_fmt: str, container: str, tmp_path: Path
) -> None:
    width, height = size
    source = make_clip(
        tmp_path / f"odd.{container}",
        frames=FRAMES,
        size=size,
        codec=codec,
        pix_fmt=pix_fmt,
        audio_codec="libopus" if container == "webm" else "aac",
    )
    assert (stream_info(source, "v")["width"], stream_info(source, "v")["height"]) == size

    output, report = run_styled(source, tmp_path, max_unit_frames=3)

    video = stream_info(output, "v")
    assert (video["width"], video["height"]) == (width, height)  # as displayed: the size
    assert (report["width"], report["height"], report["frames"]) == (width, height, FRAMES)
    assert any("4:4:4" in change and f"{width}x{height}" in change for change in report["changes"])
    original, styled = decode_rgb(source), decode_rgb(output)
    assert styled.shape == (FRAMES, height, width, 3)
    direct = styled_directly(original)
    for frame, (out, src) in enumerate(zip(styled, original, strict=True)):
        assert mean_difference(out, src) > 25, f"frame {frame} is not styled"
    # The edges are the model's own output for those very pixels, off by coding error as the
    # interior is: not padding styled into the picture, nor black. And nearer to it than a copy
    # of their neighbour would be, wherever the model's edge differs from its neighbour by more
    # than coding error (where it does not, a copy could not be told apart, nor seen).
    interior = mean_difference(styled[:, 1:-1, 1:-1], direct[:, 1:-1, 1:-1])
    for name, edge, inner in (
        ("last column", np.s_[:, :, -1], np.s_[:, :, -2]),
        ("last row", np.s_[:, -1], np.s_[:, -2]),
        ("first column", np.s_[:, :, 0], np.s_[:, :, 1]),
        ("first row", np.s_[:, 0], np.s_[:, 1]),
    ):
        error = mean_difference(styled[edge], direct[edge])
        copy = mean_difference(direct[inner], direct[edge])
        figures = (
            f"{name}: off by {error:.1f}, the interior by {interior:.1f}, a copy by {copy:.1f}"
        )
        assert error < 1.5 * interior, figures
        assert error < (interior + copy) / 2, figures
        assert styled[edge].mean() > 10, figures
