"""Publishing: the video and its preview, the report last with the video's digest; no run
overwrites another's output."""

import hashlib
import json
import logging
import queue
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.media import (
    CLIP_FRAMES,
    CLIP_RATE,
    CLIP_SIZE,
    decode_rgb,
    make_clip,
    psnr,
    restyled,
)
from videostyle.errors import VideostyleError
from videostyle.plan import Plan, Unit
from videostyle.settings import Settings
from videostyle.steps import publish as publish_step
from videostyle.steps.publish import publish, published_report
from videostyle.storage import BlobStore, Stores

WIDTH, HEIGHT = CLIP_SIZE


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        inputs_url=str(tmp_path / "in"),
        work_url=str(tmp_path / "work"),
        outputs_url=str(tmp_path / "out"),
        scratch_dir=tmp_path / "scratch",
    )


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A source clip and two different stylings of it."""
    folder = tmp_path_factory.mktemp("publish")
    source = make_clip(folder / "source.mp4")
    return {
        "source": source,
        "negated": restyled(source, folder / "negated.mp4", "negate"),
        "flipped": restyled(source, folder / "flipped.mp4", "hflip"),
    }


def stitched_job(
    stores: Stores,
    job_id: str,
    *,
    version: str,
    source: Path,
    stitched: Path,
    frames: int = CLIP_FRAMES,
    modified: float = 0.0,
) -> Plan:
    """A job as stitch leaves it: a plan, its source and its stitched video in the work store."""
    plan = Plan(
        job_id=job_id,
        video="clips/beach.mp4",
        source_version=version,
        source_ext=".mp4",
        width=WIDTH,
        height=HEIGHT,
        frame_count=frames,
        frame_rate=CLIP_RATE,
        start_s=0.0,
        duration_s=frames * 1001 / 24000,
        audio=True,
        audio_copied=True,
        model="multistyle26",
        options={"style": "scream", "strength": 1.0},
        crf=16,
        units=(
            Unit(index=0, first_frame=0, frame_count=frames, seek_s=0.0, start_s=-1.0, end_s=None),
        ),
        source_modified=modified,
    )
    plan.save(stores.work)
    stores.work.upload(source, plan.source_name)
    stores.work.upload(stitched, plan.stitched_name)
    return plan


def test_the_result_names_every_blob_with_its_uri_and_the_reports_figures(
    settings: Settings, clips: dict[str, Path]
) -> None:
    stores = Stores(settings)
    stitched_job(stores, "job-1", version="v1", source=clips["source"], stitched=clips["negated"])

    result = publish(stores, settings, job_id="job-1")

    styled = clips["negated"].read_bytes()
    outputs = settings.outputs_url
    assert result == {
        "output": "clips/beach.mp4/scream.mp4",
        "preview": "clips/beach.mp4/scream.png",
        "report": "clips/beach.mp4/scream.json",
        "container": None,  # a local folder: no container
        "output_uri": f"{outputs}/clips/beach.mp4/scream.mp4",
        "preview_uri": f"{outputs}/clips/beach.mp4/scream.png",
        "report_uri": f"{outputs}/clips/beach.mp4/scream.json",
        "job": "job-1",
        "frames": CLIP_FRAMES,
        "fps": CLIP_RATE,
        "width": WIDTH,
        "height": HEIGHT,
        "duration_s": CLIP_FRAMES * 1001 / 24000,
        "style": "scream",
        "strength": 1.0,
        "sha256": hashlib.sha256(styled).hexdigest(),
        "bytes": len(styled),
    }
    assert stores.outputs.read_bytes(result["output"]) == styled
    report = published_report(stores.outputs, result["report"])
    assert report is not None
    assert report["sha256"] == hashlib.sha256(styled).hexdigest()
    assert (report["job"], report["source_version"], report["frames"]) == ("job-1", "v1", 50)
    assert (report["output"], report["preview"]) == (result["output"], result["preview"])
    assert (report["model"], report["options"]) == (
        "multistyle26",
        {"style": "scream", "strength": 1.0},
    )
    assert report["model_details"] == {}  # the style is all there is to say: an option


@pytest.mark.parametrize("frames", [CLIP_FRAMES, 1])
def test_the_preview_is_the_middle_frame_of_the_source_beside_it_styled(
    settings: Settings, tmp_path: Path, frames: int
) -> None:
    stores = Stores(settings)
    source = make_clip(tmp_path / "source.mp4", frames=frames)
    styled = restyled(source, tmp_path / "styled.mp4", "negate")
    stitched_job(stores, "job-1", version="v1", source=source, stitched=styled, frames=frames)

    result = publish(stores, settings, job_id="job-1")

    assert stores.outputs.exists("clips/beach.mp4/scream.png")
    png = stores.outputs.download(result["preview"], tmp_path / "preview.png")
    (preview,) = decode_rgb(png)
    assert preview.shape == (HEIGHT, 2 * WIDTH, 3)  # input | output
    left, right = preview[:, :WIDTH], preview[:, WIDTH:]
    middle = frames // 2
    assert psnr(left, decode_rgb(source)[middle]) > 40
    assert psnr(right, decode_rgb(styled)[middle]) > 40
    assert psnr(left, right) < 10  # the right half really is the styled frame


def test_publish_killed_before_its_report_leaves_nothing_that_looks_finished(
    settings: Settings,
    clips: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stores = Stores(settings)
    stitched_job(stores, "job-1", version="v1", source=clips["source"], stitched=clips["negated"])

    def killed(*_: object) -> None:
        raise KeyboardInterrupt  # the process dies between the video and its report

    monkeypatch.setattr(publish_step, "collect", killed)
    with pytest.raises(KeyboardInterrupt):
        publish(stores, settings, job_id="job-1")
    assert stores.outputs.exists("clips/beach.mp4/scream.mp4")
    assert stores.outputs.exists("clips/beach.mp4/scream.png")
    assert published_report(stores.outputs, "clips/beach.mp4/scream.json") is None

    monkeypatch.undo()
    publish(stores, settings, job_id="job-1")  # the retry completes it
    report = published_report(stores.outputs, "clips/beach.mp4/scream.json")
    assert report is not None
    assert report["sha256"] == hashlib.sha256(clips["negated"].read_bytes()).hexdigest()


def test_a_second_run_of_the_same_content_does_not_overwrite_the_first(
    settings: Settings, clips: dict[str, Path]
) -> None:
    stores = Stores(settings)
    stitched_job(stores, "job-1", version="v1", source=clips["source"], stitched=clips["negated"])
    stitched_job(stores, "job-2", version="v1", source=clips["source"], stitched=clips["flipped"])

    first = publish(stores, settings, job_id="job-1")
    second = publish(stores, settings, job_id="job-2")

    assert stores.outputs.read_bytes("clips/beach.mp4/scream.mp4") == clips["negated"].read_bytes()
    report = json.loads(stores.outputs.read_bytes("clips/beach.mp4/scream.json"))
    assert report["job"] == "job-1"
    assert second == first  # what it names is the first run's publication


def test_a_rerun_of_the_same_job_and_a_new_version_do_publish(
    settings: Settings, clips: dict[str, Path]
) -> None:
    stores = Stores(settings)
    stitched_job(stores, "job-1", version="v1", source=clips["source"], stitched=clips["negated"])
    publish(stores, settings, job_id="job-1")
    publish(stores, settings, job_id="job-1")  # idempotent rerun
    assert stores.outputs.read_bytes("clips/beach.mp4/scream.mp4") == clips["negated"].read_bytes()

    stitched_job(stores, "job-2", version="v2", source=clips["source"], stitched=clips["flipped"])
    result = publish(stores, settings, job_id="job-2")
    assert stores.outputs.read_bytes("clips/beach.mp4/scream.mp4") == clips["flipped"].read_bytes()
    assert (result["job"], result["sha256"]) == (
        "job-2",
        hashlib.sha256(clips["flipped"].read_bytes()).hexdigest(),
    )


def test_an_older_versions_run_never_replaces_a_newer_versions_output(
    settings: Settings, clips: dict[str, Path]
) -> None:
    stores = Stores(settings)
    for job, version, styled, modified in (
        ("job-new", "v2", "flipped", 200.0),
        ("job-old", "v1", "negated", 100.0),
    ):
        stitched_job(
            stores,
            job,
            version=version,
            source=clips["source"],
            stitched=clips[styled],
            modified=modified,
        )

    newer = publish(stores, settings, job_id="job-new")
    late = publish(stores, settings, job_id="job-old")  # the older upload's run ends last

    assert stores.outputs.read_bytes("clips/beach.mp4/scream.mp4") == clips["flipped"].read_bytes()
    report = published_report(stores.outputs, "clips/beach.mp4/scream.json")
    assert report is not None
    assert (report["job"], report["source_version"], report["source_modified"]) == (
        "job-new",
        "v2",
        200.0,
    )
    assert late == newer  # what it names is the newer version's publication


def test_a_stitched_video_that_is_not_the_jobs_own_is_refused_and_nothing_is_published(
    settings: Settings, tmp_path: Path, clips: dict[str, Path]
) -> None:
    stores = Stores(settings)
    other = make_clip(tmp_path / "other.mp4", frames=CLIP_FRAMES - 8)
    stitched_job(stores, "job-1", version="v1", source=clips["source"], stitched=other)

    with pytest.raises(VideostyleError, match=r"42 frames .* its plan 50 frames"):
        publish(stores, settings, job_id="job-1")
    assert stores.outputs.list() == []


@pytest.fixture(params=["local folders", "Azurite"])
def any_settings(
    request: pytest.FixtureRequest, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The stores as local folders, or as containers in Azurite (its leases, not flock)."""
    if request.param == "local folders":
        return settings
    request.getfixturevalue("blob_env")
    monkeypatch.setenv("VIDEOSTYLE_SCRATCH_DIR", str(settings.scratch_dir))
    return Settings()


def test_two_publishes_of_the_same_content_at_once_write_it_once(
    any_settings: Settings, clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = any_settings
    stitched_job(
        Stores(settings), "job-1", version="v1", source=clips["source"], stitched=clips["negated"]
    )
    stitched_job(
        Stores(settings), "job-2", version="v1", source=clips["source"], stitched=clips["flipped"]
    )
    events: queue.Queue[str] = queue.Queue()
    first_may_go_on = threading.Event()
    read_report = publish_step.published_report

    def first_pauses_after_its_check(outputs: BlobStore, name: str) -> dict[str, Any] | None:
        found = read_report(outputs, name)
        if threading.current_thread().name == "job-1":
            events.put("job-1 checked")
            assert first_may_go_on.wait(timeout=300)
        return found

    monkeypatch.setattr(publish_step, "published_report", first_pauses_after_its_check)
    uploads: list[str] = []
    upload = BlobStore.upload

    def counted(store: BlobStore, local: Path, name: str) -> None:
        uploads.append(name)
        upload(store, local, name)

    monkeypatch.setattr(BlobStore, "upload", counted)
    results: dict[str, dict[str, Any]] = {}

    def publish_job(job: str) -> None:
        results[job] = publish(Stores(settings), settings, job_id=job)  # as another process would
        events.put(f"{job} published")

    class WaitSeen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waits for the lock" in record.getMessage() and "job-2" in record.getMessage():
                events.put("job-2 waits")

    storage_log = logging.getLogger("videostyle.storage")
    watcher = WaitSeen()
    storage_log.addHandler(watcher)
    monkeypatch.setattr(storage_log, "level", logging.INFO)
    first = threading.Thread(target=publish_job, args=("job-1",), name="job-1")
    second = threading.Thread(target=publish_job, args=("job-2",), name="job-2")
    try:
        first.start()
        assert events.get(timeout=300) == "job-1 checked"  # and holds on, between check and write
        second.start()
        # The second must wait for the first, not find no report and write its own.
        assert events.get(timeout=300) == "job-2 waits"
    finally:
        first_may_go_on.set()
        first.join(timeout=300)
        second.join(timeout=300)
        storage_log.removeHandler(watcher)

    styled = clips["negated"].read_bytes()
    outputs = Stores(settings).outputs
    assert outputs.read_bytes("clips/beach.mp4/scream.mp4") == styled
    assert uploads.count("clips/beach.mp4/scream.mp4") == 1
    report = published_report(outputs, "clips/beach.mp4/scream.json")
    assert report is not None
    assert (report["job"], report["sha256"]) == ("job-1", hashlib.sha256(styled).hexdigest())
    assert results["job-2"] == results["job-1"]
