"""The REST API v2, as a script drives the live service: bad parameters are refused before a run
exists where the Params' schema can tell, and otherwise fail fast, never retried, saying why."""

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from tests.live.api import AirflowApi
from tests.media import make_clip
from tests.style_images import save_photo
from videostyle_airflow.config import PROCESS_DAG_ID

RUN_TIMEOUT_S = 300


@pytest.mark.parametrize(
    ("conf", "named"),
    [
        ({"video": "any.mp4", "strength": 2}, "strength"),
        ({"video": "any.mp4", "style": "starry-nite"}, "style"),
        ({"video": "any.mp4", "style": "3:0.5,19:0.5"}, "style"),  # blends: the CLI only
        ({"video": "any.mp4", "model": "mosaic"}, "model"),
        ({"video": ""}, "video"),
    ],
)
def test_a_conf_the_schema_refuses_creates_no_run(
    api: AirflowApi, conf: dict[str, Any], named: str
) -> None:
    before = len(api.runs(PROCESS_DAG_ID))
    refused = api.trigger(PROCESS_DAG_ID, conf)
    assert refused.status_code == 400, refused.text
    assert f"param {named}" in refused.json()["detail"]
    assert len(api.runs(PROCESS_DAG_ID)) == before


def _failed_run(api: AirflowApi, conf: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    created = api.trigger(PROCESS_DAG_ID, conf)
    assert created.status_code == 200, created.text
    run_id = created.json()["dag_run_id"]
    run = api.wait_for_run(PROCESS_DAG_ID, run_id, timeout_s=RUN_TIMEOUT_S)
    return run, api.task_instances(PROCESS_DAG_ID, run_id)


@pytest.mark.integration
def test_a_bad_parameter_fails_fast_and_is_named_as_one(api: AirflowApi) -> None:
    # Within the schema (each field is valid), refused by the model: painting needs its image.
    run, tis = _failed_run(api, {"video": "absent.mp4", "model": "painting"})
    assert run["state"] == "failed"
    preprocess = tis["preprocess"]
    assert (preprocess["state"], preprocess["try_number"]) == ("failed", 1)  # never retried
    failure = api.xcom(PROCESS_DAG_ID, run["dag_run_id"], "preprocess", key="failure")
    assert "bad parameter" in failure
    assert "style_image" in failure
    assert "input" not in failure
    assert _shown_as_the_error(api, run["dag_run_id"]) == f"preprocess failed: {failure}"


@pytest.mark.integration
def test_a_missing_video_fails_fast_with_its_reason(api: AirflowApi) -> None:
    run, tis = _failed_run(api, {"video": "never-uploaded.mp4"})
    assert run["state"] == "failed"
    assert (tis["preprocess"]["state"], tis["preprocess"]["try_number"]) == ("failed", 1)
    failure = api.xcom(PROCESS_DAG_ID, run["dag_run_id"], "preprocess", key="failure")
    assert "never-uploaded.mp4" in failure
    assert _shown_as_the_error(api, run["dag_run_id"]) == f"preprocess failed: {failure}"


def _shown_as_the_error(api: AirflowApi, run_id: str) -> str:
    """What the failed preprocess try's log ends with, before Airflow's own epilogue: the
    step's last line, and the error Airflow shows beneath "Task failed with exception"."""
    entries = api.log_entries(PROCESS_DAG_ID, run_id, "preprocess", 1)
    (error,) = [e for e in entries if e.get("level") == "error"]
    shown = error["error_detail"][0]["exc_value"]
    before = entries[: entries.index(error)]
    assert before[-1]["event"].endswith(shown)
    return str(shown)


@pytest.mark.integration
def test_a_painting_run_takes_the_look_of_an_uploaded_image(
    api: AirflowApi, blob_service: BlobServiceClient, tmp_path: Path
) -> None:
    """The issue's scenario: a painting in the styles container, a video in the inputs one, a
    run started by the REST API with model painting."""
    image = save_photo(tmp_path / "coffee.jpg", "coffee")
    blob_service.get_blob_client("videos-styles", "works/coffee.jpg").upload_blob(
        image.read_bytes(), overwrite=True
    )
    clip = make_clip(tmp_path / "painted.mp4", frames=24)
    blob_service.get_blob_client("videos-in", "rest/painted.mp4").upload_blob(
        clip.read_bytes(), overwrite=True
    )
    conf = {"video": "rest/painted.mp4", "model": "painting", "style_image": "works/coffee.jpg"}
    created = api.trigger(PROCESS_DAG_ID, conf)
    assert created.status_code == 200, created.text
    run = api.wait_for_run(PROCESS_DAG_ID, created.json()["dag_run_id"], timeout_s=RUN_TIMEOUT_S)
    assert run["state"] == "success"
    outputs = blob_service.get_container_client("videos-out")
    report = json.loads(outputs.download_blob("rest/painted.mp4/coffee.json").readall())
    assert (report["model"], report["frames"]) == ("painting", 24)
    details = report["model_details"]
    assert details["style_image"] == "works/coffee.jpg"
    assert details["style_image_sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
