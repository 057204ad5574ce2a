"""Publish: the styled video, its preview, then its report, into the outputs container.

The report is written last and carries the video's SHA-256: a reader that trusts only a video
whose report names its digest never mistakes a partial or stale result for a finished one.
The preview is a PNG of the middle frame, the source's beside the styled one: the look of the
result at a glance, wherever a person finds the output.
"""

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from videostyle.media.ffmpeg import probe, side_by_side
from videostyle.models.registry import get_model, output_name
from videostyle.plan import Plan, load_plan, load_prepared
from videostyle.scratch import scratch_folder
from videostyle.settings import Settings
from videostyle.storage import BlobStore, Stores
from videostyle.timings import collect, record, timed

log = logging.getLogger(__name__)

# The report's figures that publish's result carries too, so that whoever announces the output
# (an Airflow asset event) need not read the report. `style` and `strength` are the options of
# that name (None for a model without them), as reports had them before models had options.
KEY_FIGURES = (
    "job",
    "frames",
    "fps",
    "width",
    "height",
    "duration_s",
    "style",
    "strength",
    "sha256",
    "bytes",
)


def output_stem(plan: Plan) -> str:
    """`clips/beach.mp4` in starry-night at strength 0.5 → `clips/beach.mp4/starry-night-s50`:
    the input's name, then the look as the job's model names it, `-steady` added when the job
    was steadied over time (the temporal mode: another video than the per-frame one).

    The whole input name stays in it, so `beach.mp4` and `beach.mov` never share an output.
    """
    look = output_name(plan.model, plan.options)
    return f"{plan.video}/{look}-steady" if plan.temporal else f"{plan.video}/{look}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def published_report(outputs: BlobStore, report_name: str) -> dict[str, Any] | None:
    return json.loads(outputs.read_bytes(report_name)) if outputs.exists(report_name) else None


def middle_frame_s(plan: Plan) -> float:
    """Half a frame before the middle frame: a seek there lands on that frame, however rounded."""
    return max(plan.frame_count // 2 - 0.5, 0.0) / float(plan.rate)


def container_of(url: str) -> str | None:
    """The container of an az:// or abfs:// store URL; None for a local folder."""
    scheme, found, rest = url.partition("://")
    return rest.split("/", 1)[0] if found and scheme in ("az", "abfs") else None


def publication(
    outputs: BlobStore, names: dict[str, str], report: dict[str, Any]
) -> dict[str, Any]:
    """Publish's result: each blob's name in the outputs store and its URI, the container, and
    the report's key figures."""
    return {
        **names,
        "container": container_of(outputs.url),
        **{f"{kind}_uri": outputs.uri(name) for kind, name in names.items()},
        **{figure: report[figure] for figure in KEY_FIGURES},
    }


def unit_facts(work: BlobStore, plan: Plan) -> list[dict[str, Any]]:
    """The facts a model with context frames gave about each unit (scoring stores them beside
    the unit as `units/<index>.json`), in unit order; none for other models."""
    prefix = f"{plan.prefix}/units/"
    return [
        json.loads(work.read_bytes(name))
        for name in work.list(prefix)
        if name.startswith(prefix) and name.endswith(".json")
    ]


def publish_lock_name(stem: str) -> str:
    return f"locks/publish/{stem}"


def publish(stores: Stores, settings: Settings, *, job_id: str) -> dict[str, Any]:
    """Publish job `job_id`'s stitched video, its preview and its report; returns `publication`.

    One job at a time publishes to an output (a lock in the work store), so the check of what is
    there and the writes that follow are one step: of two runs of the same content the first
    wins, and a run of an older version of the input never replaces a newer one's output.
    """
    plan = load_plan(stores.work, job_id)
    stem = output_stem(plan)
    names = {"output": f"{stem}.mp4", "preview": f"{stem}.png", "report": f"{stem}.json"}
    with stores.work.lock(publish_lock_name(stem), holder=f"job {job_id}"):
        existing = published_report(stores.outputs, names["report"])
        if existing and existing["job"] != job_id:
            if existing["source_version"] == plan.source_version:
                # Another run already styled this very content the same way.
                log.info("%s is already published by job %s", names["output"], existing["job"])
                return publication(stores.outputs, names, existing)
            if existing.get("source_modified", 0.0) > plan.source_modified:
                log.warning(
                    "%s stays as job %s published it: from a newer version of %s than this job's",
                    names["output"],
                    existing["job"],
                    plan.video,
                )
                return publication(stores.outputs, names, existing)
        return _publish(stores, settings, plan, names)


def from_cli(stores: Stores, settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """`videostyle publish --job JOB`: what it wrote, its result line."""
    return publish(stores, settings, job_id=args.job)


def _publish(
    stores: Stores, settings: Settings, plan: Plan, names: dict[str, str]
) -> dict[str, Any]:
    job_id = plan.job_id
    # What the model says of the job beyond its options (a style image and its SHA-256): asked
    # first, so that a model that cannot say it fails before anything is published.
    model = get_model(plan.model)
    details = model.report(plan.options, load_prepared(stores.work, plan))
    details |= model.report_units(plan.options, unit_facts(stores.work, plan))
    with timed() as took, scratch_folder(settings, job_id, "publish") as scratch:
        video = stores.work.download(plan.stitched_name, scratch / "stitched.mp4")
        plan.check_video(
            probe(video, timeout=settings.ffmpeg_timeout_s, decode=False), "stitched video"
        )
        digest, size = sha256_of(video), video.stat().st_size
        source = stores.work.download(plan.source_name, scratch / f"source{plan.source_ext}")
        preview = side_by_side(
            source,
            video,
            scratch / "preview.png",
            at_s=middle_frame_s(plan),
            timeout=settings.ffmpeg_timeout_s,
        )
        stores.outputs.upload(video, names["output"])
        stores.outputs.upload(preview, names["preview"])
    record(stores.work, plan, "publish", dict(took))
    report = {
        "video": plan.video,
        "source_version": plan.source_version,
        "source_modified": plan.source_modified,
        "output": names["output"],
        "preview": names["preview"],
        "sha256": digest,
        "bytes": size,
        "job": job_id,
        "frames": plan.frame_count,
        "fps": plan.frame_rate,
        "width": plan.width,
        "height": plan.height,
        "duration_s": plan.duration_s,
        "audio": plan.audio,
        "audio_copied": plan.audio_copied,
        # Every liberty taken with the source on the way (deinterlaced, 10-bit to 8-bit, ...).
        "changes": list(plan.changes),
        "model": plan.model,
        "options": plan.options,
        "model_details": details,
        "style": plan.options.get("style"),
        "strength": plan.options.get("strength"),
        "crf": plan.crf,
        "temporal": plan.temporal,  # steadied over time (videostyle.temporal)
        "units": len(plan.units),
        "timings": collect(stores.work, plan),
        "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    stores.outputs.write_bytes(names["report"], json.dumps(report, indent=1).encode())
    log.info("published %s", stores.outputs.uri(names["output"]))
    return publication(stores.outputs, names, report)
