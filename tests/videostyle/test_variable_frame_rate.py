"""A variable frame rate is styled frame for frame: every frame at its own source time, none
added or dropped, the audio in sync, through units that cut across its irregular stretches."""

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from tests.media import decode_audio, decode_rgb, frame_pts, make_clip, stream_info
from tests.videostyle.runs import mean_difference, run_styled, styled_directly

pytestmark = pytest.mark.integration

# Of 60 frames at 24000/1001 fps: the first 12, then every other one, then every third, plus
# one out of step: gaps of one, two, three and one-then-two frames (42 to 125 ms).
IRREGULAR = "lt(n,12)+between(n,12,35)*not(mod(n,2))+gte(n,36)*not(mod(n,3))+eq(n,40)"


# MPEG-TS starts at 1.4 s, on a 90 kHz clock: a late first frame keeps its time too.
@pytest.mark.parametrize("container", ["mp4", "mkv", "ts"])
def test_variable_frame_rate_is_styled_frame_for_frame(container: str, tmp_path: Path) -> None:
    source = make_clip(tmp_path / f"vfr.{container}", frames=60, select=IRREGULAR)
    times = frame_pts(source)
    gaps = {b - a for a, b in pairwise(times)}
    assert len(gaps) >= 3  # truly variable, not a constant rate rounded to a clock

    output, report = run_styled(source, tmp_path, max_unit_frames=4)

    # Every frame at its source time, exactly (MP4 at the source's clock or a multiple of it).
    assert frame_pts(output) == times
    assert report["frames"] == len(times) == 33
    assert report["units"] >= 8  # units of at most 4 frames: cut through every stretch
    assert report["changes"] == []
    # The audio in sync: as far from the video as in the source, as long, within one frame.
    assert _audio_lead(output) == pytest.approx(_audio_lead(source), abs=1e-4)
    (audio_in, rate_in), (audio_out, rate_out) = decode_audio(source), decode_audio(output)
    assert len(audio_out) / rate_out == pytest.approx(len(audio_in) / rate_in, abs=float(max(gaps)))
    # Each output frame is its own source frame styled: none shifted, doubled or skipped.
    original, styled = decode_rgb(source), decode_rgb(output)
    assert styled.shape == original.shape
    direct = styled_directly(original)
    distances = np.array([[mean_difference(s, d) for d in direct] for s in styled])
    nearest_other = (distances + np.diag(np.full(len(styled), np.inf))).min(axis=1)
    assert (distances.diagonal() < nearest_other / 2).all()  # and by far


def _audio_lead(path: Path) -> float:
    """How long the audio starts before the video."""
    return float(stream_info(path, "v")["start_time"]) - float(stream_info(path, "a")["start_time"])
