"""Uploads to the inputs container, as a media team makes them, against the live service: each
video version gets one run, within seconds, one run at a time, with nobody clicking anything."""

import time
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from tests.live.api import AirflowApi
from tests.media import make_clip
from videostyle_airflow.config import PROCESS_DAG_ID, SCORING_POOL
from videostyle_airflow.provision import POOLS

RUN_TIMEOUT_S = 600
# The target is 30 s (README); this bound only keeps a loaded machine from making it flaky.
DETECTION_BOUND_S = 120


def _runs_for(api: AirflowApi, video: str) -> list[dict[str, Any]]:
    return [r for r in api.runs(PROCESS_DAG_ID) if (r.get("conf") or {}).get("video") == video]


def _wait_for_runs(api: AirflowApi, video: str, *, timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while not (runs := _runs_for(api, video)):
        assert time.monotonic() < deadline, f"no {PROCESS_DAG_ID} run for {video} in {timeout_s} s"
        time.sleep(1)
    return runs


def _upload(
    blob_service: BlobServiceClient, path: Path, name: str, metadata: dict[str, str] | None = None
) -> float:
    """Upload `path` as `name`; the UNIX time the service committed it."""
    blob = blob_service.get_blob_client("videos-in", name)
    blob.upload_blob(path.read_bytes(), overwrite=True, metadata=metadata)
    return blob.get_blob_properties().last_modified.timestamp()


def _interval(run: dict[str, Any]) -> tuple[float, float]:
    from datetime import datetime

    return (
        datetime.fromisoformat(run["start_date"]).timestamp(),
        datetime.fromisoformat(run["end_date"]).timestamp(),
    )


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@pytest.mark.integration
def test_uploads_start_one_run_each_within_seconds_one_at_a_time(
    api: AirflowApi, blob_service: BlobServiceClient, tmp_path: Path
) -> None:
    first = make_clip(tmp_path / "first.mp4", frames=24)
    committed = _upload(blob_service, first, "intake/first.mp4")
    (run,) = _wait_for_runs(api, "intake/first.mp4", timeout_s=DETECTION_BOUND_S)
    from datetime import datetime

    latency = datetime.fromisoformat(run["queued_at"]).timestamp() - committed
    print(f"\nintake latency: upload committed -> process run queued in {latency:.1f} s")
    assert 0 < latency < DETECTION_BOUND_S
    done = api.wait_for_run(PROCESS_DAG_ID, run["dag_run_id"], timeout_s=RUN_TIMEOUT_S)
    assert done["state"] == "success"
    outputs = blob_service.get_container_client("videos-out")
    names = {b.name for b in outputs.list_blobs(name_starts_with="intake/first.mp4/")}
    assert {"intake/first.mp4/starry-night.mp4", "intake/first.mp4/starry-night.json"} <= names

    # The same bytes again, then two new videos together: the new ones' runs show that intake
    # has listed the container since the re-upload, which by then has started nothing.
    _upload(blob_service, first, "intake/first.mp4")
    # Two choose their look at upload, as `az storage blob upload --metadata` does.
    pair = [make_clip(tmp_path / f"pair{i}.mp4", frames=24 + i) for i in range(2)]
    _upload(blob_service, pair[0], "intake/pair0.mp4", metadata={"model": "anonymize"})
    _upload(blob_service, pair[1], "intake/pair1.mp4", metadata={"style": "scream"})
    pair_runs = [
        _wait_for_runs(api, f"intake/{clip.name}", timeout_s=DETECTION_BOUND_S) for clip in pair
    ]
    assert [len(runs) for runs in pair_runs] == [1, 1]
    finished = [
        api.wait_for_run(PROCESS_DAG_ID, runs[0]["dag_run_id"], timeout_s=RUN_TIMEOUT_S)
        for runs in pair_runs
    ]
    assert [r["state"] for r in finished] == ["success", "success"]
    assert len(_runs_for(api, "intake/first.mp4")) == 1
    assert {b.name for b in outputs.list_blobs(name_starts_with="intake/pair")} >= {
        "intake/pair0.mp4/anonymized.mp4",
        "intake/pair1.mp4/scream.mp4",
    }

    # max_active_runs is 1 here: the two runs never overlapped, nor did their scoring (pool).
    assert not _overlap(_interval(finished[0]), _interval(finished[1]))
    scores = [
        _interval(api.task_instances(PROCESS_DAG_ID, r["dag_run_id"])["score"]) for r in finished
    ]
    assert not _overlap(*scores)
    assert POOLS[SCORING_POOL].slots == 1
