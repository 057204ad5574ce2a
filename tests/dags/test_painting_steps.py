"""A painting job through the process DAG's four step tasks as the local launcher runs them
(LocalStepOperator: the real CLI, each step with only its own SAS credentials) against Azurite.

The DAG's form does not offer the painting model yet, so `airflow dags test` cannot start one;
what a run adds to this (the claim, templating the Params into these same arguments) is the
same for every model and is covered by test_process_dag_run.py.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from tests.media import decode_rgb, frame_times
from tests.style_images import save_photo
from tests.videostyle_airflow.operator_doubles import TaskInstance
from videostyle.settings import Settings
from videostyle.steps.preprocess import quarantine_name
from videostyle.storage import Stores
from videostyle_airflow.local_step import LocalStepOperator

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

RANKS = 2


@pytest.fixture
def stores(blob_connection: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stores:
    """Azurite's fresh containers behind the `videostyle_blob` connection; the steps get only
    their SAS (LocalStepOperator drops AZURE_STORAGE_CONNECTION_STRING)."""
    monkeypatch.setenv("VIDEOSTYLE_SCRATCH_DIR", str(tmp_path / "scratch"))
    return Stores(Settings())


def run_step(step: str, args: list[str], *, ranks: int = 1) -> Any:
    """One step task, as the DAG's `step_task` makes it with the local launcher."""
    op = LocalStepOperator(task_id=step, step=step, args=args, ranks=ranks)
    return op.execute(context={"ti": TaskInstance()})  # type: ignore[typeddict-item]  # the TI double lacks the Protocol's static methods


def preprocess_args(job: str, style_image: str, video: str) -> list[str]:
    """The DAG's preprocess arguments, the model and its style image in place of --style."""
    return [
        "--job",
        job,
        "--model",
        "painting",
        "--style-image",
        style_image,
        "--strength",
        "1.0",
        "--crf",
        "16",
        "--ranks",
        str(RANKS),
        "--",
        video,
    ]


def test_a_painting_job_runs_through_the_dags_steps_on_their_own_credentials(
    stores: Stores, sample_clip: Path, tmp_path: Path
) -> None:
    stores.inputs.upload(sample_clip, "clip.mp4")
    painting = save_photo(tmp_path / "starry.webp", "astronaut")
    stores.styles.upload(painting, "paintings/starry.webp")

    run_step("preprocess", preprocess_args("job-painting", "paintings/starry.webp", "clip.mp4"))
    run_step("score", ["--job", "job-painting"], ranks=RANKS)
    run_step("stitch", ["--job", "job-painting"])
    run_step("publish", ["--job", "job-painting"])

    assert stores.outputs.list() == [
        "clip.mp4/starry.json",
        "clip.mp4/starry.mp4",
        "clip.mp4/starry.png",
    ]
    output = stores.outputs.download("clip.mp4/starry.mp4", tmp_path / "out.mp4")
    assert len(decode_rgb(output)) == 50
    assert frame_times(output) == pytest.approx(frame_times(sample_clip), abs=1e-4)
    report = json.loads(stores.outputs.read_bytes("clip.mp4/starry.json"))
    assert (report["model"], report["frames"]) == ("painting", 50)
    assert report["model_details"]["style_image"] == "paintings/starry.webp"
    assert (
        report["model_details"]["style_image_sha256"]
        == hashlib.sha256(painting.read_bytes()).hexdigest()
    )


def test_a_missing_style_blob_fails_preprocess_for_good_and_quarantines_the_job(
    stores: Stores, sample_clip: Path
) -> None:
    stores.inputs.upload(sample_clip, "clip.mp4")
    ti = TaskInstance()
    op = LocalStepOperator(
        task_id="preprocess",
        step="preprocess",
        args=preprocess_args("job-no-painting", "paintings/lost.jpg", "clip.mp4"),
    )

    with pytest.raises(AirflowFailException) as failed:  # Airflow never retries this
        op.execute(context={"ti": ti})  # type: ignore[typeddict-item]  # the TI double lacks the Protocol's static methods

    said = "style image 'paintings/lost.jpg' does not exist in az://"
    assert str(failed.value).startswith(f"preprocess failed: {said}")
    report = json.loads(stores.work.read_bytes(quarantine_name("job-no-painting")))
    assert report["problem"].startswith(said)
