"""The streaming scorer in one process, its output, timings and progress lines: real ffmpeg,
model and local-folder store; only MPI is replaced, by a one-rank communicator (the multi-rank
launch is the integration tests')."""

import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.media import decode_rgb, make_clip
from videostyle.defaults import BUILTIN_MODEL
from videostyle.errors import VideostyleError
from videostyle.models.registry import load_model
from videostyle.models.style_runner import StyleRunner
from videostyle.plan import Plan
from videostyle.progress import RANK_LINE, Progress, parse_progress
from videostyle.settings import Settings
from videostyle.steps.preprocess import preprocess
from videostyle.steps.score import pick_device, score
from videostyle.storage import BlobStore, Stores

JOB = "job-stream"
CPU = torch.device("cpu")
STAGE_THREADS = ("read-ahead", "encode", "finish")


class OneRank:
    """An mpi4py communicator of one rank (stand-in for MPI, not under test here)."""

    def Get_rank(self) -> int:  # noqa: N802
        return 0

    def Get_size(self) -> int:  # noqa: N802
        return 1

    def gather(self, sendobj: Any, root: int = 0) -> list[Any]:
        return [sendobj]


@pytest.fixture
def job(tmp_path: Path) -> tuple[Stores, Settings, Plan]:
    """A 7-frame clip preprocessed into 3 units (of 3, 2 and 2 frames)."""
    settings = Settings(
        inputs_url=str(tmp_path / "in"),
        work_url=str(tmp_path / "work"),
        outputs_url=str(tmp_path / "out"),
        scratch_dir=tmp_path / "scratch",
        max_unit_frames=3,
        compile="off",
    )
    stores = Stores(settings)
    clip = make_clip(tmp_path / "clip.mp4", frames=7, audio=False)
    stores.inputs.upload(clip, "clip.mp4")
    plan = preprocess(
        stores,
        settings,
        video="clip.mp4",
        job_id=JOB,
        model=BUILTIN_MODEL,
        options={"style": "scream", "strength": 1.0},
        crf=16,
        ranks=1,
    )
    assert len(plan.units) == 3
    return stores, settings, plan


def stage_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(STAGE_THREADS)]


def test_every_unit_is_styled_uploaded_and_timed(job: tuple[Stores, Settings, Plan]) -> None:
    stores, settings, plan = job
    score(stores, settings, job_id=JOB, comm=OneRank())

    scratch = settings.scratch_dir / JOB
    for unit in plan.units:
        local = stores.work.download(plan.unit_name(unit), scratch / f"{unit.index}.mp4")
        assert len(decode_rgb(local)) == unit.frame_count
    timings = json.loads(stores.work.read_bytes(plan.timing_name("score")))
    assert (timings["batch"], timings["compiled"]) == (1, False)  # CPU defaults
    (rank,) = timings["ranks"]
    assert (rank["scored"], rank["frames"]) == (3, 7)
    assert 0 < rank["model_seconds"] <= rank["stream_seconds"] <= rank["seconds"]
    assert rank["peak_rss_mb"] > 100  # torch alone takes more
    assert rank["cpu_seconds"] > 0
    assert rank["ffmpeg_cpu_seconds"] > 0
    assert stage_threads() == []


def test_styled_frames_are_the_models_output(job: tuple[Stores, Settings, Plan]) -> None:
    stores, settings, plan = job
    score(stores, settings, job_id=JOB, comm=OneRank())
    unit = plan.units[0]
    styled = decode_rgb(stores.work.download(plan.unit_name(unit), settings.scratch_dir / "u.mp4"))
    source = decode_rgb(stores.work.download(plan.source_name, settings.scratch_dir / "s.mp4"))
    transform = load_model(BUILTIN_MODEL, {"style": "scream"}, device=CPU)
    direct = transform(torch.from_numpy(source[: unit.frame_count].copy())).numpy()
    error = np.abs(styled.astype(int) - direct).mean()
    assert error < 12  # H.264 at CRF 16 in 4:2:0 on dense texture; a wrong frame is ~60
    assert np.abs(styled.astype(int) - source[: unit.frame_count]).mean() > 30


def test_a_failed_upload_fails_the_rank_and_stops_every_stage(
    job: tuple[Stores, Settings, Plan], monkeypatch: pytest.MonkeyPatch
) -> None:
    stores, settings, plan = job

    def refuse(self: BlobStore, local: Path, name: str) -> None:
        raise VideostyleError(f"storage refused {name}")

    monkeypatch.setattr(BlobStore, "upload", refuse)
    with pytest.raises(VideostyleError, match=r"storage refused jobs/job-stream/units/00000\.mp4"):
        score(stores, settings, job_id=JOB, comm=OneRank())
    assert stage_threads() == []
    assert not any(stores.work.exists(plan.unit_name(u)) for u in plan.units)


def test_a_failing_model_uploads_only_whole_units_and_stops_every_stage(
    job: tuple[Stores, Settings, Plan], monkeypatch: pytest.MonkeyPatch
) -> None:
    stores, settings, plan = job
    style = StyleRunner.__call__
    calls = []

    def breaks_on_fourth_batch(self: StyleRunner, frames: torch.Tensor) -> torch.Tensor:
        calls.append(len(frames))
        if len(calls) == 4:  # unit 0's 3 frames went through; unit 1's first one fails
            raise RuntimeError("out of memory")
        return style(self, frames)

    monkeypatch.setattr(StyleRunner, "__call__", breaks_on_fourth_batch)
    with pytest.raises(RuntimeError, match="out of memory"):
        score(stores, settings, job_id=JOB, comm=OneRank())
    assert stage_threads() == []
    # Unit 0 was whole before the failure: it finished in the background and stays done.
    assert [stores.work.exists(plan.unit_name(u)) for u in plan.units] == [True, False, False]


def test_a_rerun_reports_skipped_units_as_done_and_styles_the_rest(
    job: tuple[Stores, Settings, Plan], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stores, settings, plan = job
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


def test_cpu_is_used_when_asked_or_when_no_gpu_is_visible() -> None:
    assert pick_device("cpu", local_rank=3) == CPU
    if not torch.cuda.is_available():
        assert pick_device("auto", local_rank=3) == CPU
        with pytest.raises(VideostyleError, match="shows no CUDA device"):
            pick_device("cuda")


def test_ranks_on_a_machine_take_its_gpus_in_turn_with_gpus_faked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No GPU here: torch's view of them is faked (2 devices)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    devices = [pick_device("auto", local_rank=r) for r in range(4)]
    assert devices == [torch.device("cuda", i) for i in (0, 1, 0, 1)]
