"""The scoring step and the whole pipeline on a real clip, through the real command lines:
`mpirun -n N python -m mpi4py -m videostyle score` against a local-folder store (the job
preprocessed by the library first), and `python -m videostyle run` for all four steps.

A job's preparation (`prepared`) comes from the same preprocess, for the model-only figures of
models that prepare something once per job (a painting's style vector)."""

import json
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import proc
from videostyle.commands import step_argv
from videostyle.defaults import BUILTIN_MODEL, DEFAULT_CRF
from videostyle.models.base import Prepared
from videostyle.models.registry import model_argument
from videostyle.pipeline import local_style_image
from videostyle.plan import load_prepared
from videostyle.settings import Settings
from videostyle.steps.preprocess import preprocess
from videostyle.storage import Stores

JOB = "bench"


@dataclass(frozen=True)
class Job:
    model: str  # a registered model's name, or a TransformerNet checkpoint's path
    style: str | None
    ranks: int
    compile: str  # VIDEOSTYLE_COMPILE: on, off or auto
    precision: str = "auto"  # VIDEOSTYLE_PRECISION
    # More of the model's options, as `--options` JSON; a `style_image` is a local file, as
    # `videostyle run --style-image PATH` takes it.
    options: Mapping[str, Any] = field(default_factory=dict)


def prepared(clip: Path, model: str, options: Mapping[str, Any], workdir: Path) -> Prepared:
    """What `model`'s once-per-job preparation makes of `options` (a `style_image` a local
    file) for `clip`: the library's preprocess run on it, as in a job, and read back as scoring
    reads it."""
    root = workdir / f"prepare-{uuid.uuid4().hex[:8]}"
    urls = {
        "inputs_url": str(clip.parent),
        "work_url": str(root / "work"),
        "outputs_url": str(root / "outputs"),
        "styles_url": str(root / "styles"),
        "scratch_dir": str(root / "scratch"),
    }
    settings = Settings.model_validate(urls)
    stores = Stores(settings)
    plan = preprocess(
        stores,
        settings,
        video=clip.name,
        job_id=JOB,
        model=model,
        options=local_style_image(options, Path(urls["styles_url"])),
        crf=DEFAULT_CRF,
        ranks=1,
    )
    return load_prepared(stores.work, plan)


def score(clip: Path, job: Job, workdir: Path) -> dict[str, Any]:
    """Time the scoring step alone; its ranks' own figures come from its timing record."""
    root = workdir / f"score-{uuid.uuid4().hex[:8]}"
    urls = {
        "inputs_url": str(clip.parent),
        "work_url": str(root / "work"),
        "outputs_url": str(root / "outputs"),
        "scratch_dir": str(root / "scratch"),
    }
    settings = Settings.model_validate(urls)
    stores = Stores(settings)
    model, options = model_argument(job.model)
    plan = preprocess(
        stores,
        settings,
        video=clip.name,
        job_id=JOB,
        model=model,
        options=options | {"style": job.style},
        crf=DEFAULT_CRF,
        ranks=job.ranks,
    )
    environ = proc.env(
        {f"VIDEOSTYLE_{key.upper()}": value for key, value in urls.items()}
        | {"VIDEOSTYLE_COMPILE": job.compile, "VIDEOSTYLE_PRECISION": job.precision}
    )
    ran = proc.run(step_argv("score", ["--job", JOB], ranks=job.ranks), environ)
    timings = json.loads(stores.work.read_bytes(plan.timing_name("score")))
    ranks = timings["ranks"]
    frames = plan.frame_count
    stream_s = max(r["stream_seconds"] for r in ranks)
    return {
        "frames": frames,
        "compiled": timings["compiled"],
        "batch": timings["batch"],
        "step_s": round(ran.wall_s, 2),
        "step_fps": frames / ran.wall_s,
        "stream_s": stream_s,
        "stream_fps": frames / stream_s,
        "warmup_s": max(r["warmup_seconds"] for r in ranks),
        "model_share": sum(r["model_seconds"] for r in ranks)
        / sum(r["stream_seconds"] for r in ranks),
        "cpu_s_per_frame": ran.cpu_s / frames,
        "peak_rss_mb": [r["peak_rss_mb"] for r in ranks],
        "ffmpeg_cpu_share": sum(r["ffmpeg_cpu_seconds"] for r in ranks)
        / sum(r["ffmpeg_cpu_seconds"] + r["cpu_seconds"] for r in ranks),
    }


def whole(clip: Path, job: Job, workdir: Path) -> dict[str, Any]:
    """Time `videostyle run`: preprocess, score, stitch and publish. Its fixed cost is the time
    from the command's start to its first styled frame; `timings` is the report's."""
    output = workdir / f"run-{uuid.uuid4().hex[:8]}.mp4"
    argv = [sys.executable, "-m", "videostyle", "run", str(clip), str(output)]
    argv += ["--ranks", str(job.ranks)]
    argv += ["--style", job.style] if job.style else []
    argv += ["--model", job.model] if job.model != BUILTIN_MODEL else []
    argv += ["--options", json.dumps(dict(job.options))] if job.options else []
    # Scratch of its own: `run` always names its job "local".
    environ = proc.env(
        {
            "VIDEOSTYLE_COMPILE": job.compile,
            "VIDEOSTYLE_PRECISION": job.precision,
            "VIDEOSTYLE_SCRATCH_DIR": str(output.with_suffix(".scratch")),
        }
    )
    started = time.time()
    ran = proc.run(argv, environ)
    report = json.loads(ran.stdout.strip().splitlines()[-1])
    frames = int(report["frames"])
    ranks = report["timings"]["score"]["ranks"]
    first = min(r["first_frame_unix"] for r in ranks if r.get("first_frame_unix"))
    return {
        "frames": frames,
        "wall_s": round(ran.wall_s, 2),
        "fps": frames / ran.wall_s,
        "fixed_s": round(first - started, 2),
        "cpu_s_per_frame": ran.cpu_s / frames,
        "steps_s": {step: t["seconds"] for step, t in report["timings"].items()},
        "timings": report["timings"],
        "output": output,
    }
