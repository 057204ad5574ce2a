"""Interlaced footage is found by its field order, deinterlaced (bwdif, one frame per frame)
before it is styled, keeps its frame count and timing, and the report says so."""

from pathlib import Path

import pytest

from tests.media import decode_rgb, frame_pts, make_clip, stream_info
from tests.videostyle.runs import mean_difference, run_styled, styled_directly

pytestmark = pytest.mark.integration

BWDIF = "bwdif=mode=send_frame:parity=auto:deint=all"


def test_interlaced_video_is_deinterlaced_then_styled_frame_for_frame(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "broadcast.mp4", frames=20, interlaced=True)
    assert stream_info(source, "v")["field_order"] == "tt"

    output, report = run_styled(source, tmp_path, max_unit_frames=4)

    assert report["frames"] == 20
    assert frame_pts(output) == frame_pts(source)
    assert report["changes"] == ["deinterlaced (top field first) with bwdif, one frame per frame"]
    assert stream_info(output, "v")["field_order"] == "progressive"
    # Styled from the deinterlaced frames, not from the woven fields: far nearer to the first.
    styled = decode_rgb(output)
    from_frames = mean_difference(styled, styled_directly(decode_rgb(source, BWDIF)))
    from_fields = mean_difference(styled, styled_directly(decode_rgb(source)))
    assert from_frames < from_fields / 2, (from_frames, from_fields)
