"""A rank's progress lines from a real scoring run (one process, local-folder store)."""

import logging
from pathlib import Path

import pytest

from tests.media import make_clip
from tests.videostyle.steps.test_score_pipeline import OneRank
from videostyle.defaults import BUILTIN_MODEL
from videostyle.progress import RANK_LINE, Progress, parse_progress
from videostyle.settings import Settings
from videostyle.steps.preprocess import preprocess
from videostyle.steps.score import score
from videostyle.storage import Stores

JOB = "job-progress"


def test_a_rerun_reports_skipped_units_as_done_and_styles_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        inputs_url=str(tmp_path / "in"),
        work_url=str(tmp_path / "work"),
        outputs_url=str(tmp_path / "out"),
        scratch_dir=tmp_path / "scratch",
        max_unit_frames=3,
        compile="off",
    )
    stores = Stores(settings)
    stores.inputs.upload(make_clip(tmp_path / "clip.mp4", frames=7, audio=False), "clip.mp4")
    plan = preprocess(
        stores,
        settings,
        video="clip.mp4",
        job_id=JOB,
        model=BUILTIN_MODEL,
        style="scream",
        strength=1.0,
        crf=16,
        ranks=1,
    )
    first = plan.units[0]  # 3 of the 7 frames, as a killed earlier try left it
    styled_before = tmp_path / "unit0.mp4"
    styled_before.write_bytes(b"styled by an earlier try")
    stores.work.upload(styled_before, plan.unit_name(first))
    caplog.set_level(logging.INFO, logger="videostyle.progress")

    score(stores, settings, job_id=JOB, comm=OneRank())

    matches = [RANK_LINE.search(r.getMessage()) for r in caplog.records]
    lines = [parse_progress(m) for m in matches if m is not None]
    assert lines[0] == Progress(done=3, total=7, rate=0.0, eta_s=None)
    end = lines[-1]
    assert (end.done, end.total, end.eta_s) == (7, 7, 0.0)
    assert end.rate > 0
    assert all(m["rank"] == "0" and m["size"] == "1" for m in matches if m is not None)
