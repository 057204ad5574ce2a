"""Stitch: join the scored units by stream copy, with the source's timing and its audio."""

import argparse
import logging

import ffmpeg

from videostyle.errors import VideostyleError
from videostyle.media.ffmpeg import probe, run_ffmpeg
from videostyle.plan import Plan, load_plan
from videostyle.scratch import scratch_folder
from videostyle.settings import Settings
from videostyle.storage import Stores
from videostyle.timings import record, timed

log = logging.getLogger(__name__)


def _source_timing(plan: Plan) -> str:
    """A bitstream filter putting every frame back at its source time, exactly.

    The concat demuxer chains units by durations rounded to microseconds, which drift off the
    frame grid over many units; snapping each timestamp to the grid of the source's exact
    rational rate, then shifting by its first timestamp, restores every frame's own time.
    """
    rate = f"({plan.rate.numerator}/{plan.rate.denominator})"
    shift = f"{plan.start_s!r}/TB"
    return "setts=" + ":".join(
        f"{ts}=round({ts.upper()}*TB*{rate})/({rate}*TB)+{shift}" for ts in ("pts", "dts")
    )


def stitch(stores: Stores, settings: Settings, *, job_id: str) -> None:
    plan = load_plan(stores.work, job_id)
    missing = [u.index for u in plan.units if not stores.work.exists(plan.unit_name(u))]
    if missing:
        raise VideostyleError(f"job {job_id}: units {missing[:10]} are not scored yet")
    with timed() as took, scratch_folder(settings, job_id, "stitch") as scratch:
        listing = scratch / "units.txt"
        parts = [
            stores.work.download(plan.unit_name(u), scratch / f"{u.index:05d}.mp4")
            for u in plan.units
        ]
        listing.write_text("".join(f"file '{p.name}'\n" for p in parts))
        video = ffmpeg.input(str(listing), f="concat", safe=0)
        streams = [video["v"]]
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
                **{"bsf:v": _source_timing(plan)},
            )
            .global_args("-nostdin", "-v", "error", "-y")
            .compile(),
            timeout=settings.ffmpeg_timeout_s,
        )
        plan.check_video(
            probe(stitched, timeout=settings.ffmpeg_timeout_s, decode=False), "stitched video"
        )
        stores.work.upload(stitched, plan.stitched_name)
    record(stores.work, plan, "stitch", {**took, "frames": plan.frame_count})
    log.info("job %s: stitched %d frames from %d units", job_id, plan.frame_count, len(plan.units))


def from_cli(stores: Stores, settings: Settings, args: argparse.Namespace) -> None:
    """`videostyle stitch --job JOB`."""
    stitch(stores, settings, job_id=args.job)
