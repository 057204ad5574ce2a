"""The watch DAG: scheduled on the inputs asset its trigger watches, and run by `dag.test()`
against Azurite.

Each video version must start exactly one videostyle_process run, however often the watch
runs and however many asset events one run consolidates; a version a process run started by
hand has processed starts none.
"""

import hashlib
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.models.dagrun import DagRun
from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
from airflow.sdk import DAG
from airflow.serialization.definitions.assets import (
    SerializedAsset,
    SerializedAssetBooleanCondition,
)
from airflow.serialization.definitions.dag import SerializedDAG
from airflow.serialization.serialized_objects import DagSerialization
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState
from sqlalchemy import select

from videostyle_airflow.config import (
    BLOB_CONN_ID,
    INTAKE_DEFAULTS_VARIABLE,
    INTAKE_INTERVAL_S,
    PROCESS_DAG_ID,
    WATCH_DAG_ID,
    inputs_location,
)
from videostyle_airflow.ids import run_id_for_video

CONTENT = b"..."
VERSION = hashlib.md5(CONTENT).hexdigest()  # noqa: S324 (what Blob Storage reports)


def upload_videos(
    *names: str, content: bytes = CONTENT, metadata: dict[str, str] | None = None
) -> None:
    inputs = inputs_location()
    for name in names:
        WasbHook(wasb_conn_id=BLOB_CONN_ID).upload(
            inputs.container, inputs.prefix + name, content, overwrite=True, metadata=metadata
        )


def process_runs() -> dict[str, dict[str, object] | None]:
    """run id → conf of every videostyle_process run in the metadata database."""
    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == PROCESS_DAG_ID))
        return {run.run_id: run.conf for run in runs}


@pytest.fixture
def configured_watch(airflow_home: Path, monkeypatch: pytest.MonkeyPatch) -> SerializedDAG:
    """The watch DAG as the scheduler and the triggerer see it (serialized), parsed where the
    containers are configured."""
    monkeypatch.setenv("VIDEOSTYLE_INPUTS_URL", "az://uploads/incoming")
    monkeypatch.setenv("VIDEOSTYLE_OUTPUTS_URL", "az://styled")
    dag = DagBag().dags[WATCH_DAG_ID]
    return DagSerialization.from_dict(DagSerialization.to_dict(dag))


def test_the_watch_runs_on_the_events_of_the_inputs_asset(configured_watch: SerializedDAG) -> None:
    timetable = configured_watch.timetable

    assert isinstance(timetable, AssetOrTimeSchedule)
    assert isinstance(timetable.asset_condition, SerializedAssetBooleanCondition)
    [asset] = timetable.asset_condition.objects
    assert isinstance(asset, SerializedAsset)
    assert (asset.name, asset.uri) == ("videostyle_inputs", "az://uploads/incoming")
    [watcher] = asset.watchers
    assert watcher.trigger == {
        "classpath": "videostyle_airflow.intake_trigger.NewVideosTrigger",
        "kwargs": {
            "container": "uploads",
            "prefix": "incoming/",
            "wasb_conn_id": BLOB_CONN_ID,
            "interval": INTAKE_INTERVAL_S,
        },
    }
    assert timetable.timetable.summary == "0:30:00"  # the safety sweep
    assert configured_watch.max_active_runs == 1
    assert configured_watch.is_paused_upon_creation is False


def test_the_docs_say_where_to_upload_and_where_outputs_land(
    configured_watch: SerializedDAG,
) -> None:
    doc = configured_watch.doc_md
    assert doc is not None

    assert "Upload a video to **`az://uploads/incoming`**" in doc
    assert "`VIDEOSTYLE_INPUTS_URL`" in doc
    assert "default `az://videos-in`" in doc
    assert f"The upload is seen within {INTAKE_INTERVAL_S:g} s of finishing" in doc
    assert "**`az://styled/<video>/<style>.mp4`**" in doc
    assert "`VIDEOSTYLE_OUTPUTS_URL`" in doc
    assert "**On by default**" in doc
    assert f"`airflow dags pause {WATCH_DAG_ID}`" in doc


@pytest.fixture
def watch_dag(airflow_env: dict[str, str]) -> DAG:
    # Parsed now: the DAG reads its inputs container from blob_env's settings.
    return DagBag().dags[WATCH_DAG_ID]


@pytest.mark.airflow
def test_each_video_version_starts_one_process_run(watch_dag: DAG) -> None:
    before = process_runs()
    # Uploaded together: their events make one run, which lists and claims both.
    upload_videos("first.mp4", "in/second clip.mov")

    first = watch_dag.test()

    assert first.state == DagRunState.SUCCESS
    started = {k: v for k, v in process_runs().items() if k not in before}
    assert started == {
        run_id_for_video("first.mp4", VERSION): {"video": "first.mp4"},
        run_id_for_video("in/second clip.mov", VERSION): {"video": "in/second clip.mov"},
    }

    upload_videos("first.mp4")  # the same bytes again: not new
    second = watch_dag.test()

    assert second.state == DagRunState.SUCCESS
    assert process_runs().keys() == before.keys() | started.keys()

    upload_videos("third.mp4")
    upload_videos("first.mp4", content=b"the director's cut")
    third = watch_dag.test()

    assert third.state == DagRunState.SUCCESS
    cut = hashlib.md5(b"the director's cut").hexdigest()  # noqa: S324
    assert process_runs().keys() - before.keys() - started.keys() == {
        run_id_for_video("third.mp4", VERSION),
        run_id_for_video("first.mp4", cut),
    }


@pytest.mark.airflow
def test_a_version_a_manual_run_processed_starts_no_watch_run(watch_dag: DAG) -> None:
    upload_videos("by hand.mp4")
    process_dag = DagBag().dags[PROCESS_DAG_ID]

    # A run started from the form: record_claim runs, every other task is marked done unrun.
    manual = process_dag.test(
        run_conf={"video": "by hand.mp4", "style": "scream"},
        mark_success_pattern="(?!record_claim$).*",
    )
    assert manual.state == DagRunState.SUCCESS
    before = process_runs()

    assert watch_dag.test().state == DagRunState.SUCCESS
    assert process_runs() == before

    upload_videos("by hand.mp4", content=b"a new version")
    assert watch_dag.test().state == DagRunState.SUCCESS
    new = hashlib.md5(b"a new version").hexdigest()  # noqa: S324
    assert process_runs().keys() - before.keys() == {run_id_for_video("by hand.mp4", new)}


@pytest.mark.airflow
def test_an_uploads_metadata_chooses_its_look_and_a_variable_the_rest(
    watch_dag: DAG, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"AIRFLOW_VAR_{INTAKE_DEFAULTS_VARIABLE}", '{"style": "wheat-field"}')
    before = process_runs()
    upload_videos("screamed.mp4", metadata={"style": "scream", "strength": "0.5"})
    upload_videos("default look.mp4")

    assert watch_dag.test().state == DagRunState.SUCCESS

    started = {k: v for k, v in process_runs().items() if k not in before}
    assert started == {
        run_id_for_video("screamed.mp4", VERSION): {
            "video": "screamed.mp4",
            "style": "scream",
            "strength": 0.5,
        },
        run_id_for_video("default look.mp4", VERSION): {
            "video": "default look.mp4",
            "style": "wheat-field",
        },
    }
