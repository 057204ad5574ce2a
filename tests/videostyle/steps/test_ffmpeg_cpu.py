"""ffmpeg's CPU per stage in the run report: after a real `videostyle run` (mpirun, 2 ranks),
each step's timing record holds the CPU seconds of its own ffmpeg children, and score's ranks
split theirs into decoding the source and encoding the units."""

import os
from pathlib import Path

from tests.media import make_clip
from tests.videostyle.runs import run_styled

FRAMES = 24


def test_a_run_reports_ffmpeg_cpu_per_stage_and_rank(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "clip.mp4", frames=FRAMES, size=(320, 180))
    _, report = run_styled(source, tmp_path, max_unit_frames=6)
    timings = report["timings"]
    cores = os.cpu_count() or 1

    preprocess = timings["preprocess"]
    # ffprobe's listing and full decode, and the audio copy: all its ffmpeg children
    assert 0 < preprocess["ffmpeg_decode_cpu_seconds"] <= preprocess["ffmpeg_cpu_seconds"]
    assert preprocess["ffmpeg_cpu_seconds"] < preprocess["seconds"] * cores
    assert preprocess["ffmpeg_decode_ms_per_frame"] > 0

    score = timings["score"]
    ranks = score["ranks"]
    assert len(ranks) == 2
    for rank in ranks:
        decode, encode = rank["ffmpeg_decode_cpu_seconds"], rank["ffmpeg_encode_cpu_seconds"]
        assert 0 < decode < encode, rank  # x264 does far more per frame than the decoder
        assert encode < rank["stream_seconds"] * cores, rank
        # within what the rank's children took in all (rounded to 10 ms)
        assert decode + encode <= rank["ffmpeg_cpu_seconds"] + 0.01, rank
        frames = rank["frames"]
        assert frames > 0
        assert abs(rank["ffmpeg_encode_ms_per_frame"] - 1000 * encode / frames) < 0.1  # rounding
        assert abs(rank["ffmpeg_decode_ms_per_frame"] - 1000 * decode / frames) < 0.1
    assert score["ffmpeg_decode_cpu_seconds"] == round(
        sum(r["ffmpeg_decode_cpu_seconds"] for r in ranks), 3
    )
    assert score["ffmpeg_encode_cpu_seconds"] == round(
        sum(r["ffmpeg_encode_cpu_seconds"] for r in ranks), 3
    )

    stitch = timings["stitch"]
    assert 0 < stitch["ffmpeg_cpu_seconds"] < stitch["seconds"] * cores
