"""Preprocess: validate the input and the job, keep its audio, plan the units of frames."""

import argparse
import json
import logging
import re
import time
from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path, PurePosixPath
from typing import Any

import ffmpeg

from videostyle.errors import BadInputError, BadParameterError, VideostyleError
from videostyle.media.conversions import changes, output_pix_fmt
from videostyle.media.ffmpeg import FFmpegError, MediaInfo, ffmpeg_cpu_delta, probe, run_ffmpeg
from videostyle.media.frames import time_range
from videostyle.models.base import JobContext
from videostyle.models.registry import get_model, job_options, output_name
from videostyle.plan import Plan, Unit, load_plan, plan_name, store_prepared, store_timestamps
from videostyle.scratch import scratch_folder
from videostyle.settings import Settings
from videostyle.split import units_for
from videostyle.storage import BlobStat, Stores
from videostyle.timings import record, timed

log = logging.getLogger(__name__)


def validate_job(
    *, model: str, options: Mapping[str, Any], crf: int, temporal: bool = False
) -> dict[str, Any]:
    """Refuse a job that could never succeed before any work is spent on it; returns the
    model's complete options (videostyle.models.registry.job_options).

    Its parameters are at fault, not the video: nothing is quarantined.
    """
    complete = job_options(model, options)
    output_name(model, complete)  # a look it could not publish under is refused now
    if not 0 <= crf <= 51:
        raise BadParameterError(f"bad parameter crf={crf}: outside H.264's 0..51")
    if temporal and not get_model(model).temporal:
        raise BadParameterError(
            f"bad parameter temporal=true: model {model} must never blend frames over time"
        )
    return complete


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
                **time_range(times, first, stop)._asdict(),
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
    options: Mapping[str, Any],
    crf: int,
    ranks: int,
    temporal: bool = False,
) -> Plan:
    """Snapshot the input into the job, extract its audio, run the model's once-per-job
    preparation (stored with the job) and write the plan (written last).

    `model` is a name in videostyle.models.registry, `options` its options (defaults filled
    in); `temporal` asks for the temporal mode (videostyle.temporal). An unusable input is
    quarantined: a report naming the problem goes to the work container; a bad parameter (an
    option, the temporal mode for a model that refuses it, or what the model's preparation
    refuses as one) is not.
    """
    if stores.work.exists(plan_name(job_id)):
        log.info("job %s is already preprocessed", job_id)
        return load_plan(stores.work, job_id)
    options = validate_job(model=model, options=options, crf=crf, temporal=temporal)
    with (
        timed() as took,
        ffmpeg_cpu_delta() as media,
        scratch_folder(settings, job_id, "preprocess") as scratch,
    ):
        try:
            source, info, source_stat = _inspect(stores, settings, video, scratch)
            audio = scratch / "audio.m4a"
            audio_copied = info.audio_streams > 0 and _extract_audio(
                source, audio, codecs=info.audio_codecs, timeout=settings.ffmpeg_timeout_s
            )
            context = JobContext(
                job_id=job_id,
                video=video,
                source=source,
                info=info,
                scratch=scratch / "model",
                settings=settings,
                stores=stores,
            )
            context.scratch.mkdir(parents=True, exist_ok=True)
            with timed() as preparing:
                prepared = store_prepared(
                    stores.work, job_id, get_model(model).prepare(options, context)
                )
            plan = Plan(
                job_id=job_id,
                video=video,
                source_version=source_stat.version,
                source_modified=source_stat.modified,
                source_bytes=source_stat.size,
                source_ext=source.suffix,
                width=info.width,
                height=info.height,
                frame_count=info.frame_count,
                frame_rate=str(info.frame_rate),
                time_base=str(info.time_base),
                pix_fmt=output_pix_fmt(info),
                deinterlace=info.interlaced,
                changes=changes(info, audio_copied=audio_copied),
                start_s=info.start_s,
                duration_s=info.duration_s,
                audio=info.audio_streams > 0,
                audio_copied=audio_copied,
                audio_start_s=info.audio_start_s,
                model=model,
                options=options,
                crf=crf,
                units=plan_units(info, ranks=ranks, max_unit_frames=settings.max_unit_frames),
                prepared=prepared,
                temporal=temporal,
            )
            store_timestamps(stores.work, plan, info.frame_pts)
            if plan.audio:
                stores.work.upload(audio, plan.audio_name)
            stores.work.upload(source, plan.source_name)
        except BadParameterError:
            raise  # the job's parameters are at fault, not the video
        except BadInputError as exc:
            _quarantine(stores, job_id=job_id, video=video, problem=str(exc))
            raise
    record(
        stores.work,
        plan,
        "preprocess",
        {
            **took,
            "frames": plan.frame_count,
            "prepare_seconds": preparing["seconds"],
            # ffprobe and ffmpeg: in all, and the full decode that proves every frame readable.
            "ffmpeg_cpu_seconds": media["total"],
            "ffmpeg_decode_cpu_seconds": media.get("probe", 0.0),
            "ffmpeg_decode_ms_per_frame": round(
                1000 * media.get("probe", 0.0) / plan.frame_count, 3
            ),
        },
    )
    plan.save(stores.work)  # last: a plan means the job's inputs are all in place
    log.info(
        "%s: %d frames at %s fps%s, %d units, audio %s (job %s)%s",
        video,
        plan.frame_count,
        plan.frame_rate,
        "" if info.constant_frame_rate else " on average (variable: every frame's time kept)",
        len(plan.units),
        plan.audio,
        job_id,
        "".join(f"; {change}" for change in plan.changes),
    )
    return plan


def from_cli(stores: Stores, settings: Settings, args: argparse.Namespace) -> None:
    """`videostyle preprocess VIDEO --job JOB ...`, the job's model and options resolved."""
    preprocess(
        stores,
        settings,
        video=args.video,
        job_id=args.job,
        model=args.model,
        options=args.options,
        crf=args.crf,
        ranks=args.ranks,
        temporal=args.temporal,
    )


def quarantine_name(job_id: str) -> str:
    return f"quarantine/{job_id}.json"


def _quarantine(stores: Stores, *, job_id: str, video: str, problem: str) -> None:
    """Mark the input as unusable, with the reason, where operators look (never retried)."""
    report = {"video": video, "job": job_id, "problem": problem, "at": time.time()}
    stores.work.write_bytes(quarantine_name(job_id), json.dumps(report, indent=1).encode())
    log.error("quarantined %r: %s", video, problem)


def _inspect(
    stores: Stores, settings: Settings, video: str, scratch: Path
) -> tuple[Path, MediaInfo, BlobStat]:
    """Fetch and probe the input (and say which version of it), refusing it early when it is
    past the configured limits."""
    try:
        stat = stores.inputs.stat(video)
    except FileNotFoundError:
        raise BadInputError(f"{video!r} does not exist in {stores.inputs.url}") from None
    if stat.size == 0:
        raise BadInputError(f"{video!r} is empty (0 bytes)")
    if stat.size > settings.max_input_bytes:
        raise BadInputError(
            f"{video!r} is {stat.size} bytes, over the {settings.max_input_bytes} limit"
        )
    source = stores.inputs.download(video, scratch / f"source{_extension(video)}")
    if source.stat().st_size != stat.size:  # replaced between the two calls: not `stat`'s content
        raise VideostyleError(f"{video!r} changed while it was being read: try again")
    try:
        info = probe(source, timeout=settings.ffmpeg_timeout_s)
    except BadInputError as exc:  # said of the local copy: name the blob instead
        raise BadInputError(str(exc).replace(source.name, repr(video), 1)) from exc
    if info.width * info.height > settings.max_pixels:
        raise BadInputError(
            f"{video!r} is {info.width}x{info.height}, over the {settings.max_pixels}-pixel limit"
        )
    repeated = [a for a, b in pairwise(info.frame_pts) if a == b]
    if repeated:  # a frame is found, and cut into units, by its timestamp alone
        raise BadInputError(
            f"{video!r} has frames at the same time as the one before ({len(repeated)}, the "
            f"first at {float(repeated[0] * info.time_base):.3f} s): frames are told apart by "
            "their timestamps, so it cannot be styled frame for frame"
        )
    if info.duration_s > settings.max_duration_s:
        raise BadInputError(
            f"{video!r} lasts {info.duration_s:.0f} s, "
            f"over the {settings.max_duration_s:.0f} s limit"
        )
    return source, info, stat


# Audio codecs that MP4 carries and players play there. ffmpeg also muxes Vorbis, Opus, FLAC
# or PCM into MP4, but browsers and QuickTime refuse most of those: they become AAC.
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "alac"})


def _extract_audio(source: Path, audio: Path, *, codecs: tuple[str, ...], timeout: float) -> bool:
    """Every audio stream into an MP4 audio file: copied as it is where every codec is one of
    MP4_AUDIO_CODECS (or the copy fails), else AAC. Returns whether it was copied.

    MP4 keeps the encoder-delay edit list that Matroska would drop, so durations stay exact.
    """
    problem: FFmpegError | None = None
    copyable = all(codec in MP4_AUDIO_CODECS for codec in codecs)
    for codec in ("copy", "aac") if copyable else ("aac",):
        argv = (
            ffmpeg.input(str(source))
            .output(str(audio), map="0:a", acodec=codec, f="mp4", **{"b:a": "256k"})
            .global_args("-nostdin", "-v", "error", "-y")
            .compile()
        )
        try:
            run_ffmpeg(argv, timeout=timeout)
        except FFmpegError as exc:
            problem = exc
            continue
        if codec != "copy":
            log.warning("%s audio cannot go into MP4 as it is: re-encoded to AAC", ",".join(codecs))
        return codec == "copy"
    raise BadInputError(f"the audio cannot be read: {problem}")
