"""Publishing: the report last with the video's digest; no run overwrites another's output."""

import hashlib
import json
from pathlib import Path

import pytest

from videostyle.plan import Plan, Unit
from videostyle.settings import Settings
from videostyle.steps import publish as publish_step
from videostyle.steps.publish import publish, published_report
from videostyle.storage import Stores


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        inputs_url=str(tmp_path / "in"),
        work_url=str(tmp_path / "work"),
        outputs_url=str(tmp_path / "out"),
        scratch_dir=tmp_path / "scratch",
    )


def stitched_job(stores: Stores, job_id: str, *, version: str, content: bytes) -> Plan:
    """A job as stitch leaves it: a plan and its stitched video in the work container."""
    plan = Plan(
        job_id=job_id,
        video="clips/beach.mp4",
        source_version=version,
        source_ext=".mp4",
        width=64,
        height=48,
        frame_count=1,
        frame_rate="25/1",
        start_s=0.0,
        duration_s=0.04,
        audio=False,
        audio_copied=False,
        model="multistyle26",
        style="scream",
        strength=1.0,
        crf=16,
        units=(Unit(index=0, first_frame=0, frame_count=1, seek_s=0.0, start_s=-1.0, end_s=None),),
    )
    plan.save(stores.work)
    stores.work.write_bytes(plan.stitched_name, content)
    return plan


def test_report_is_written_last_and_names_the_videos_digest(settings: Settings) -> None:
    stores = Stores(settings)
    stitched_job(stores, "job-1", version="v1", content=b"styled video bytes")

    names = publish(stores, settings, job_id="job-1")

    assert names == {
        "output": "clips/beach.mp4/scream.mp4",
        "report": "clips/beach.mp4/scream.json",
    }
    assert stores.outputs.read_bytes(names["output"]) == b"styled video bytes"
    report = published_report(stores.outputs, names["report"])
    assert report is not None
    assert report["sha256"] == hashlib.sha256(b"styled video bytes").hexdigest()
    assert (report["job"], report["source_version"], report["frames"]) == ("job-1", "v1", 1)


def test_publish_killed_before_its_report_leaves_nothing_that_looks_finished(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stores = Stores(settings)
    stitched_job(stores, "job-1", version="v1", content=b"styled video bytes")

    def killed(*_: object) -> None:
        raise KeyboardInterrupt  # the process dies between the video and its report

    monkeypatch.setattr(publish_step, "collect", killed)
    with pytest.raises(KeyboardInterrupt):
        publish(stores, settings, job_id="job-1")
    assert stores.outputs.exists("clips/beach.mp4/scream.mp4")
    assert published_report(stores.outputs, "clips/beach.mp4/scream.json") is None

    monkeypatch.undo()
    publish(stores, settings, job_id="job-1")  # the retry completes it
    report = published_report(stores.outputs, "clips/beach.mp4/scream.json")
    assert report is not None
    assert report["sha256"] == hashlib.sha256(b"styled video bytes").hexdigest()


def test_a_second_run_of_the_same_content_does_not_overwrite_the_first(
    settings: Settings,
) -> None:
    stores = Stores(settings)
    stitched_job(stores, "job-1", version="v1", content=b"first run")
    stitched_job(stores, "job-2", version="v1", content=b"duplicate run")

    publish(stores, settings, job_id="job-1")
    publish(stores, settings, job_id="job-2")

    assert stores.outputs.read_bytes("clips/beach.mp4/scream.mp4") == b"first run"
    report = json.loads(stores.outputs.read_bytes("clips/beach.mp4/scream.json"))
    assert report["job"] == "job-1"


def test_a_rerun_of_the_same_job_and_a_new_version_do_publish(settings: Settings) -> None:
    stores = Stores(settings)
    stitched_job(stores, "job-1", version="v1", content=b"first run")
    publish(stores, settings, job_id="job-1")
    publish(stores, settings, job_id="job-1")  # idempotent rerun
    assert stores.outputs.read_bytes("clips/beach.mp4/scream.mp4") == b"first run"

    stitched_job(stores, "job-2", version="v2", content=b"the new version")
    publish(stores, settings, job_id="job-2")
    assert stores.outputs.read_bytes("clips/beach.mp4/scream.mp4") == b"the new version"
