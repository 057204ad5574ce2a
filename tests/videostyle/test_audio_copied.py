"""The input's audio reaches the output: copied bit for bit where MP4 can carry its codec, else
re-encoded to AAC with the same samples in the same place, and the report says which."""

from pathlib import Path

import numpy as np
import pytest

from tests.media import audio_packets, decode_audio, decode_rgb, make_clip, stream_info
from tests.videostyle.runs import run_styled

pytestmark = pytest.mark.integration

FRAMES = 24
SIZE = (64, 48)


def test_audio_mp4_carries_is_copied_bit_for_bit(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "in.mp4", frames=FRAMES, size=SIZE)
    output = tmp_path / "out.mp4"
    _, report = run_styled(source, tmp_path, ranks=1, output=output, max_unit_frames=48)

    assert (report["frames"], report["audio"], report["audio_copied"]) == (FRAMES, True, True)
    assert len(decode_rgb(output)) == FRAMES
    packets = audio_packets(source)
    assert sum(not line.startswith("#") for line in packets) > 40  # a second of AAC frames
    # Codec, extradata, and every packet's timestamps, size and bytes: the input's own audio.
    assert audio_packets(output) == packets


def test_audio_mp4_cannot_carry_is_reencoded_with_its_samples_in_place(tmp_path: Path) -> None:
    # Debian's ffmpeg 5.1 has no MP4 tag for PCM (newer ones may: then pick another codec).
    source = make_clip(tmp_path / "in.mkv", frames=FRAMES, size=SIZE, audio_codec="pcm_s16le")
    assert stream_info(source, "a")["codec_name"] == "pcm_s16le"
    output = tmp_path / "out.mp4"
    _, report = run_styled(source, tmp_path, ranks=1, output=output, max_unit_frames=48)

    assert (report["frames"], report["audio"], report["audio_copied"]) == (FRAMES, True, False)
    assert len(decode_rgb(output)) == FRAMES
    assert stream_info(output, "a")["codec_name"] == "aac"
    (heard, heard_rate), (given, given_rate) = decode_audio(output), decode_audio(source)
    assert heard_rate == given_rate == 48000
    # The same duration to the sample: the encoder's delay and padding are trimmed on playback.
    assert len(heard) == len(given) > 0.9 * given_rate
    # The same tone in the same place: a shift by a single sample would cost 440 Hz about 25 dB.
    error = heard.astype(np.float64) - given
    snr = 10 * np.log10(np.sum(given.astype(np.float64) ** 2) / np.sum(error**2))
    assert snr > 30


def test_vorbis_which_mp4_could_hold_but_players_refuse_there_becomes_aac(
    tmp_path: Path,
) -> None:
    source = make_clip(tmp_path / "in.mkv", frames=FRAMES, size=SIZE, audio_codec="libvorbis")
    assert stream_info(source, "a")["codec_name"] == "vorbis"
    output = tmp_path / "out.mp4"
    _, report = run_styled(source, tmp_path, ranks=1, output=output, max_unit_frames=48)

    assert (report["audio"], report["audio_copied"]) == (True, False)
    assert stream_info(output, "a")["codec_name"] == "aac"
    (heard, rate), (given, _) = decode_audio(output), decode_audio(source)
    # Vorbis in Matroska leaves its encoder's padding in the decoded length: within a frame.
    assert abs(len(heard) - len(given)) <= rate * 1001 / 24000
