"""Stitch: join the scored units by stream copy, every frame at its source time, and the audio."""

import argparse
import logging
from fractions import Fraction

import ffmpeg

from videostyle.errors import VideostyleError
from videostyle.media.ffmpeg import ffmpeg_cpu_delta, probe, run_ffmpeg
from videostyle.media.remux import join_units
from videostyle.plan import load_plan, load_timestamps
from videostyle.scratch import scratch_folder
from videostyle.settings import Settings
from videostyle.storage import Stores
from videostyle.timings import record, timed

log = logging.getLogger(__name__)


def _start_shift(start_s: float) -> str:
    """A bitstream filter moving a stream from zero back to its source start time.

    ffmpeg reads every input from zero: the joined video holds every frame's source time less
    the first frame's (media.remux), the audio file its source times less the earliest stream's
    (preprocess). Each gets its own start back, so the two stay as far apart as in the source.
    """
    shift = f"{start_s!r}/TB"
    return f"setts=pts=PTS+{shift}:dts=DTS+{shift}"


def _timescale(time_base: Fraction) -> int:
    """The clock MP4 counts the video's timestamps in: at least 10 kHz, as ffmpeg's muxer
    makes it (its track timescale), so that every source tick is a whole number of it."""
    scale = time_base.denominator
    while scale < 10_000:
        scale *= 2
    return scale


def stitch(stores: Stores, settings: Settings, *, job_id: str) -> None:
    plan = load_plan(stores.work, job_id)
    missing = [u.index for u in plan.units if not stores.work.exists(plan.unit_name(u))]
    if missing:
        raise VideostyleError(f"job {job_id}: units {missing[:10]} are not scored yet")
    with (
        timed() as took,
        ffmpeg_cpu_delta() as media,
        scratch_folder(settings, job_id, "stitch") as scratch,
    ):
        parts = [
            (
                stores.work.download(plan.unit_name(u), scratch / f"{u.index:05d}.mp4"),
                u.first_frame,
                u.frame_count,
            )
            for u in plan.units
        ]
        time_base, pts = load_timestamps(stores.work, plan)
        joined = scratch / "joined.mp4"
        # From zero, as ffmpeg reads every input: the first frame's time is added back below.
        from_zero = [p - pts[0] for p in pts]
        join_units(parts, joined, rate=plan.rate, time_base=time_base, pts=from_zero)
        streams = [ffmpeg.input(str(joined))["v"]]
        if plan.audio:
            audio = stores.work.download(plan.audio_name, scratch / "audio.m4a")
            streams.append(ffmpeg.input(str(audio))["a"])
        stitched = scratch / "stitched.mp4"
        run_ffmpeg(
            ffmpeg.output(
                *streams,
                str(stitched),
                c="copy",
                movflags="+faststart",
                # A late first frame (MPEG-TS starts at 1.4 s) is an edit list in the movie's
                # clock, milliseconds by default: the video's own keeps its time exact.
                movie_timescale=_timescale(time_base),
                **{"bsf:v": _start_shift(plan.start_s)},
                # Only a late start: an early one is a codec's delay (Opus), never played.
                **({"bsf:a": _start_shift(plan.audio_start_s)} if plan.audio_start_s > 0 else {}),
            )
            .global_args("-nostdin", "-v", "error", "-y")
            .compile(),
            timeout=settings.ffmpeg_timeout_s,
        )
        plan.check_video(
            probe(stitched, timeout=settings.ffmpeg_timeout_s, decode=False), "stitched video"
        )
        stores.work.upload(stitched, plan.stitched_name)
    record(
        stores.work,
        plan,
        "stitch",
        # ffmpeg's muxing and probing; the units are joined in this process (PyAV), and nothing
        # is decoded or encoded.
        {**took, "frames": plan.frame_count, "ffmpeg_cpu_seconds": media["total"]},
    )
    log.info("job %s: stitched %d frames from %d units", job_id, plan.frame_count, len(plan.units))


def from_cli(stores: Stores, settings: Settings, args: argparse.Namespace) -> None:
    """`videostyle stitch --job JOB`."""
    stitch(stores, settings, job_id=args.job)
