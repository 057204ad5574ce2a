"""The watch DAG run by `dag.test()` against Azurite, its deferrable sensor included.

Each uploaded video must start exactly one videostyle_process run, however often the
watch runs.
"""

import hashlib
from collections.abc import AsyncIterator

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.models.dagrun import DagRun
from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
from airflow.providers.microsoft.azure.triggers.wasb import WasbPrefixSensorTrigger
from airflow.sdk import DAG
from airflow.triggers.base import TriggerEvent
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState
from sqlalchemy import select

from videostyle_airflow.config import BLOB_CONN_ID, PROCESS_DAG_ID, WATCH_DAG_ID, inputs_location
from videostyle_airflow.ids import run_id_for_video

pytestmark = pytest.mark.airflow


CONTENT = b"..."
VERSION = hashlib.md5(CONTENT).hexdigest()  # noqa: S324 (what Blob Storage reports)


def upload_videos(*names: str) -> None:
    inputs = inputs_location()
    for name in names:
        WasbHook(wasb_conn_id=BLOB_CONN_ID).upload(inputs.container, inputs.prefix + name, CONTENT)


def process_runs() -> dict[str, dict[str, object]]:
    """run id → conf of every videostyle_process run in the metadata database."""
    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == PROCESS_DAG_ID))
        return {run.run_id: run.conf for run in runs}


@pytest.fixture
def watch_dag(airflow_env: dict[str, str]) -> DAG:
    # Parsed now: the DAG reads its inputs container from blob_env's settings.
    dag = DagBag().dags[WATCH_DAG_ID]
    dag.get_task("wait_for_videos").poke_interval = 1  # type: ignore[attr-defined]
    return dag


@pytest.fixture
def videos_arrive_while_deferred(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Upload the named videos once the sensor's trigger runs; returns the list to fill."""
    names: list[str] = []
    trigger_run = WasbPrefixSensorTrigger.run

    async def upload_then_run(self: WasbPrefixSensorTrigger) -> AsyncIterator[TriggerEvent]:
        upload_videos(*names)
        async for event in trigger_run(self):
            yield event

    monkeypatch.setattr(WasbPrefixSensorTrigger, "run", upload_then_run)
    return names


def test_each_video_starts_one_process_run(
    watch_dag: DAG, videos_arrive_while_deferred: list[str]
) -> None:
    before = process_runs()
    # Nothing is there when the sensor first looks, so it defers; the videos land meanwhile.
    videos_arrive_while_deferred.extend(["first.mp4", "in/second clip.mov"])

    first = watch_dag.test()

    assert first.state == DagRunState.SUCCESS
    started = {k: v for k, v in process_runs().items() if k not in before}
    assert started == {
        run_id_for_video("first.mp4", VERSION): {"video": "first.mp4"},
        run_id_for_video("in/second clip.mov", VERSION): {"video": "in/second clip.mov"},
    }

    videos_arrive_while_deferred.clear()
    second = watch_dag.test()

    assert second.state == DagRunState.SUCCESS
    assert process_runs().keys() == before.keys() | started.keys()

    upload_videos("third.mp4")
    third = watch_dag.test()

    assert third.state == DagRunState.SUCCESS
    assert process_runs().keys() - before.keys() - started.keys() == {
        run_id_for_video("third.mp4", VERSION)
    }
