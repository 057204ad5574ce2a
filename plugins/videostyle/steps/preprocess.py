"""Preprocess: validate the input and the job, keep its audio, plan the units of frames."""

import logging
import re
import shutil
from pathlib import Path, PurePosixPath

import ffmpeg

from videostyle.defaults import BUILTIN_MODEL
from videostyle.errors import BadInputError
from videostyle.media.ffmpeg import FFmpegError, MediaInfo, probe, run
from videostyle.models.styles import parse_style
from videostyle.plan import Plan, Unit, job_prefix, load_plan, plan_name
from videostyle.settings import Settings
from videostyle.split import units_for
from videostyle.storage import Stores
from videostyle.timings import record, timed

log = logging.getLogger(__name__)

SEEK_MARGIN_S = 1.0  # seek this far before a unit so demuxers that seek by DTS land before it


def validate_job(*, model: str, style: str | None, strength: float, crf: int) -> None:
    """Refuse a job that could never succeed before any work is spent on it."""
    if model == BUILTIN_MODEL:
        parse_style(style or "")
    elif style:
        raise BadInputError(f"style {style!r} given with checkpoint {model}: it has its own style")
    if not 0.0 <= strength <= 1.0:
        raise BadInputError(f"strength {strength} is outside [0, 1]")
    if not 0 <= crf <= 51:
        raise BadInputError(f"crf {crf} is outside H.264's 0..51")


def plan_units(info: MediaInfo, *, ranks: int, max_unit_frames: int) -> tuple[Unit, ...]:
    """Units cut between frames, at the midpoint of their timestamps: exact for any frame timing."""
    times = info.frame_times
    units = []
    for index, frames in enumerate(units_for(info.frame_count, ranks, max_unit_frames)):
        first, stop = frames.start, frames.stop
        units.append(
            Unit(
                index=index,
                first_frame=first,
                frame_count=len(frames),
                seek_s=max(0.0, times[first] - SEEK_MARGIN_S),
                start_s=(times[first - 1] + times[first]) / 2
                if first
                else times[0] - SEEK_MARGIN_S,
                end_s=(times[stop - 1] + times[stop]) / 2 if stop < len(times) else None,
            )
        )
    return tuple(units)


def _extension(video: str) -> str:
    suffix = PurePosixPath(video).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""


def preprocess(
    stores: Stores,
    settings: Settings,
    *,
    video: str,
    job_id: str,
    model: str,
    style: str | None,
    strength: float,
    crf: int,
    ranks: int,
) -> Plan:
    """Snapshot the input into the job, extract its audio and write the plan (written last)."""
    if stores.work.exists(plan_name(job_id)):
        log.info("job %s is already preprocessed", job_id)
        return load_plan(stores.work, job_id)
    validate_job(model=model, style=style, strength=strength, crf=crf)
    scratch = settings.scratch_dir / job_id / "preprocess"
    with timed() as took:
        try:
            source = stores.inputs.download(video, scratch / f"source{_extension(video)}")
            info = probe(source, timeout=settings.ffmpeg_timeout_s)
            plan = Plan(
                job_id=job_id,
                video=video,
                source_ext=source.suffix,
                width=info.width,
                height=info.height,
                frame_count=info.frame_count,
                frame_rate=str(info.frame_rate),
                start_s=info.start_s,
                duration_s=info.duration_s,
                audio=info.audio_streams > 0,
                model=model,
                style=style,
                strength=strength,
                crf=crf,
                units=plan_units(info, ranks=ranks, max_unit_frames=settings.max_unit_frames),
            )
            if plan.audio:
                audio = scratch / "audio.m4a"
                _extract_audio(source, audio, timeout=settings.ffmpeg_timeout_s)
                stores.work.upload(audio, plan.audio_name)
            stores.work.upload(source, plan.source_name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    record(stores.work, plan, "preprocess", {**took, "frames": plan.frame_count})
    plan.save(stores.work)  # last: a plan means the job's inputs are all in place
    log.info(
        "%s: %d frames at %s fps, %d units, audio %s (job %s)",
        video,
        plan.frame_count,
        plan.frame_rate,
        len(plan.units),
        plan.audio,
        job_prefix(job_id),
    )
    return plan


def _extract_audio(source: Path, audio: Path, *, timeout: float) -> None:
    """Copy every audio stream as it is (no re-encode) into an MP4 audio file.

    MP4 keeps the encoder-delay edit list that Matroska would drop, so durations stay exact.
    """
    argv = (
        ffmpeg.input(str(source))
        .output(str(audio), map="0:a", acodec="copy", f="mp4")
        .global_args("-nostdin", "-v", "error", "-y")
        .compile()
    )
    try:
        run(argv, timeout=timeout)
    except FFmpegError as exc:
        raise BadInputError(f"the audio cannot be carried without re-encoding: {exc}") from exc
