"""A temporal job's unit redone after preemption comes out the same: its state is rebuilt from
its own window (the frames before it decoded again), not carried from the run that was lost."""

import subprocess
from pathlib import Path

import numpy as np

from scripts.footage import real_clip
from tests.media import decode_rgb
from tests.videostyle.steps.test_score_pipeline import OneRank
from videostyle.defaults import BUILTIN_MODEL
from videostyle.settings import Settings
from videostyle.steps.preprocess import preprocess
from videostyle.steps.score import score
from videostyle.storage import Stores

JOB = "job-temporal-resume"


def test_a_redone_unit_is_identical(tmp_path: Path) -> None:
    clip = tmp_path / "bunny.mp4"
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(real_clip("bigbuckbunny.mp4"))]
    argv += ["-vf", "scale=160:96", "-frames:v", "12", "-an", "-c:v", "libx264", str(clip)]
    subprocess.run(argv, check=True)
    settings = Settings(
        inputs_url=str(tmp_path / "in"),
        work_url=str(tmp_path / "work"),
        outputs_url=str(tmp_path / "out"),
        scratch_dir=tmp_path / "scratch",
        max_unit_frames=4,
        compile="off",
    )
    stores = Stores(settings)
    stores.inputs.upload(clip, "bunny.mp4")
    plan = preprocess(
        stores,
        settings,
        video="bunny.mp4",
        job_id=JOB,
        model=BUILTIN_MODEL,
        options={"style": "starry-night"},
        crf=16,
        ranks=1,
        temporal=True,
    )
    assert plan.temporal
    assert len(plan.units) == 3
    score(stores, settings, job_id=JOB, comm=OneRank())
    units = tmp_path / "work" / plan.prefix / "units"
    first = decode_rgb(units / "00001.mp4")
    assert stores.work.exists(plan.unit_name(plan.units[1]))

    (units / "00001.mp4").unlink()  # lost with a preempted rank
    score(stores, settings, job_id=JOB, comm=OneRank())  # the retry redoes only that unit

    assert np.array_equal(decode_rgb(units / "00001.mp4"), first)
