"""Publish: the stylized video, then its report, into the outputs container.

The report is written last, so a reader that trusts only videos with a report never sees a
partial result.
"""

import json
import logging
import shutil
import time
from pathlib import Path, PurePosixPath

from videostyle.defaults import BUILTIN_MODEL
from videostyle.models.styles import parse_style
from videostyle.plan import Plan, load_plan
from videostyle.settings import Settings
from videostyle.storage import Stores
from videostyle.timings import collect, record, timed

log = logging.getLogger(__name__)


def output_stem(plan: Plan) -> str:
    """`clips/beach.mp4` styled as starry-night at strength 0.5 → `clips/beach/starry-night-s50`."""
    if plan.model == BUILTIN_MODEL:
        look = parse_style(plan.style or "").key
    else:
        look = PurePosixPath(plan.model).stem
    if plan.strength < 1.0:
        look += f"-s{round(plan.strength * 100)}"
    return f"{PurePosixPath(plan.video).with_suffix('')}/{look}"


def publish(stores: Stores, settings: Settings, *, job_id: str) -> dict[str, str]:
    plan = load_plan(stores.work, job_id)
    stem = output_stem(plan)
    names = {"output": f"{stem}.mp4", "report": f"{stem}.json"}
    scratch = settings.scratch_dir / job_id / "publish"
    with timed() as took:
        try:
            video = stores.work.download(plan.stitched_name, scratch / "stitched.mp4")
            stores.outputs.upload(video, names["output"])
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    record(stores.work, plan, "publish", dict(took))
    report = {
        "video": plan.video,
        "output": names["output"],
        "job": job_id,
        "frames": plan.frame_count,
        "fps": plan.frame_rate,
        "width": plan.width,
        "height": plan.height,
        "duration_s": plan.duration_s,
        "audio": plan.audio,
        "audio_copied": plan.audio_copied,
        "model": Path(plan.model).name,
        "style": plan.style,
        "strength": plan.strength,
        "crf": plan.crf,
        "units": len(plan.units),
        "timings": collect(stores.work, plan),
        "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    stores.outputs.write_bytes(names["report"], json.dumps(report, indent=1).encode())
    log.info("published %s", stores.outputs.uri(names["output"]))
    return names
