"""Publish as a person meets it, in the process DAG run by `dag.test()` against Azurite: the
task's links open the video, its preview and its report, and the output is an asset event
carrying its figures.

Preprocess and publish run for real, as the local launcher runs them (the CLI in a child
holding only its SAS); scoring is not what is under test: it does nothing, and stitch puts a
stand-in styled video (the source negated) where the real one would be.
"""

import hashlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import parse_qs, urlsplit
from urllib.request import urlopen

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.models.asset import AssetEvent
from airflow.models.dagrun import DagRun
from airflow.models.xcom import XComModel
from airflow.sdk.exceptions import TaskDeferred
from airflow.sdk.execution_time.context import OutletEventAccessors
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState
from sqlalchemy import select

from scripts.azurite import DEV_ACCOUNT_KEY
from tests.media import decode_rgb, psnr, restyled
from tests.videostyle_airflow.kubernetes.conftest import (  # noqa: F401 (fixtures, by name)
    NAMESPACE,
    PODS,
    EmulatedKubernetes,
    kube_api,
    kubernetes_connection,
)
from tests.videostyle_airflow.kubernetes.test_step_pod_operator_emulated import finish, task_context
from videostyle.commands import step_argv
from videostyle.plan import load_plan
from videostyle.settings import Settings
from videostyle.storage import Stores
from videostyle_airflow import local_step
from videostyle_airflow.config import PROCESS_DAG_ID
from videostyle_airflow.ids import job_id_for_run
from videostyle_airflow.launchers import step_task
from videostyle_airflow.publication import LINKS as PUBLICATION_LINKS
from videostyle_airflow.publication import PUBLISHED_VIDEOS

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

LINKS = {
    "_link_StyledVideoLink": ("output", "video/mp4"),
    "_link_PreviewLink": ("preview", "image/png"),
    "_link_ReportLink": ("report", "application/json"),
}
# Stitch's stand-in: upload the video named by its first argument as the job's stitched video.
STITCH_STAND_IN = """
import sys
from pathlib import Path
from videostyle.plan import load_plan
from videostyle.settings import Settings
from videostyle.storage import Stores
work = Stores(Settings()).work
plan = load_plan(work, sys.argv[sys.argv.index("--job") + 1])
work.upload(Path(sys.argv[1]), plan.stitched_name)
"""


@pytest.fixture
def stores(airflow_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stores:
    monkeypatch.setenv("VIDEOSTYLE_SCRATCH_DIR", str(tmp_path / "scratch"))
    return Stores(Settings())


@pytest.fixture
def styled(sample_clip: Path, tmp_path: Path) -> Path:
    return restyled(sample_clip, tmp_path / "styled.mp4", "negate")


def run_process_dag(
    monkeypatch: pytest.MonkeyPatch, stores: Stores, video: Path, *, stitched: Path | None
) -> DagRun:
    """The process DAG on `video`, stitch leaving `stitched` (None: nothing), by `dag.test()`."""

    def steps(step: str, args: list[str], *, ranks: int = 1) -> list[str]:
        if step in ("preprocess", "publish"):
            return step_argv(step, args, ranks=ranks)
        if step == "stitch" and stitched is not None:
            return [sys.executable, "-c", STITCH_STAND_IN, str(stitched), *args]
        return [sys.executable, "-c", "pass"]

    monkeypatch.setattr(local_step, "step_argv", steps)
    stores.inputs.upload(video, video.name)
    dag = DagBag().dags[PROCESS_DAG_ID]
    dag.get_task("publish").retries = 0  # a failure is final: the test need not wait for retries
    run: DagRun = dag.test(run_conf={"video": video.name, "style": "scream", "ranks": 1})
    return run


def xcoms_of(run: DagRun) -> dict[tuple[str, str], Any]:
    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id)
        )
        return {(row.task_id, row.key): XComModel.deserialize_value(row) for row in rows}


def asset_events_of(run: DagRun) -> list[tuple[str, str, list[str], dict[str, Any]]]:
    """(asset name, asset URI, aliases, extra) of every asset event the run's tasks made."""
    with create_session() as session:
        events = session.scalars(
            select(AssetEvent).where(
                AssetEvent.source_dag_id == run.dag_id, AssetEvent.source_run_id == run.run_id
            )
        )
        return [
            (
                event.asset.name,
                event.asset.uri,
                [alias.name for alias in event.source_aliases],
                event.extra,
            )
            for event in events
        ]


def test_links_open_each_published_blob_and_the_output_is_an_asset_event(
    stores: Stores,
    sample_clip: Path,
    styled: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = run_process_dag(monkeypatch, stores, sample_clip, stitched=styled)

    assert run.state == DagRunState.SUCCESS
    job = job_id_for_run(run.run_id)
    container = stores.outputs.url.removeprefix("az://")
    stem = f"{sample_clip.name}/scream"
    figures = {
        "job": job,
        "frames": 50,
        "fps": "24000/1001",
        "width": 192,
        "height": 108,
        "duration_s": load_plan(stores.work, job).duration_s,
        "style": "scream",
        "strength": 1.0,
        "sha256": hashlib.sha256(styled.read_bytes()).hexdigest(),
        "bytes": styled.stat().st_size,
    }
    uris = {
        "output_uri": f"az://{container}/{stem}.mp4",
        "preview_uri": f"az://{container}/{stem}.png",
        "report_uri": f"az://{container}/{stem}.json",
    }
    xcoms = xcoms_of(run)
    assert xcoms[("publish", "return_value")] == {
        "output": f"{stem}.mp4",
        "preview": f"{stem}.png",
        "report": f"{stem}.json",
        "container": container,
        **uris,
        **figures,
    }

    # One event, of the output's own asset, through the alias, with the report's figures.
    assert asset_events_of(run) == [
        (
            f"{container}/{stem}.mp4",
            f"az://{container}/sample%20clip.mp4/scream.mp4",
            [PUBLISHED_VIDEOS.name],
            {**figures, **uris},
        )
    ]

    signed_at = datetime.now(UTC)
    for key, (kind, content_type) in LINKS.items():
        url = xcoms[("publish", key)]
        query = parse_qs(urlsplit(url).query)
        assert query["sp"] == ["r"]  # read, nothing else
        assert query["sr"] == ["b"]  # this one blob, not its container
        assert DEV_ACCOUNT_KEY not in url
        assert "AccountKey" not in url
        expires = datetime.fromisoformat(query["se"][0])
        assert expires - signed_at == pytest.approx(timedelta(hours=24), abs=timedelta(minutes=5))
        with urlopen(url, timeout=30) as response:  # noqa: S310 (Azurite's http URL)
            assert response.read() == stores.outputs.read_bytes(
                xcoms[("publish", "return_value")][kind]
            )
            assert response.headers["Content-Type"] == content_type
            assert response.headers["Content-Disposition"] == "inline"

    # The preview the link opens: the source's middle frame | the same frame styled.
    with urlopen(xcoms[("publish", "_link_PreviewLink")], timeout=30) as response:  # noqa: S310
        (tmp_path / "preview.png").write_bytes(response.read())
    (preview,) = decode_rgb(tmp_path / "preview.png")
    assert preview.shape == (108, 2 * 192, 3)
    left, right = preview[:, :192], preview[:, 192:]
    assert psnr(left, decode_rgb(sample_clip)[25]) > 40
    assert psnr(right, decode_rgb(styled)[25]) > 40
    assert psnr(left, right) < 10
    report = json.loads(stores.outputs.read_bytes(f"{stem}.json"))
    assert report["preview"] == f"{stem}.png"


def test_a_link_past_its_ttl_is_refused(
    stores: Stores, sample_clip: Path, styled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_VIDEOSTYLE_LINK_TTL_HOURS", "-1")

    run = run_process_dag(monkeypatch, stores, sample_clip, stitched=styled)

    assert run.state == DagRunState.SUCCESS
    url = xcoms_of(run)[("publish", "_link_StyledVideoLink")]
    expires = datetime.fromisoformat(parse_qs(urlsplit(url).query)["se"][0])
    assert expires < datetime.now(UTC)
    with pytest.raises(HTTPError) as refused:
        urlopen(url, timeout=30)  # noqa: S310
    with refused.value:  # the refusal holds the response open
        assert refused.value.code == 403


def test_a_failed_publish_links_nothing_and_announces_nothing(
    stores: Stores, sample_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_process_dag(monkeypatch, stores, sample_clip, stitched=None)

    assert run.state == DagRunState.FAILED
    xcoms = xcoms_of(run)
    assert ("publish", "return_value") not in xcoms
    assert {key: xcoms[("publish", key)] for key in LINKS} == dict.fromkeys(LINKS, "")
    assert asset_events_of(run) == []


def test_the_kubernetes_publish_pod_has_the_links_and_announces_the_output(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube: EmulatedKubernetes = request.getfixturevalue("kubernetes_connection")
    account = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=ZmFrZQ==;"
    monkeypatch.setenv(
        "AIRFLOW_CONN_VIDEOSTYLE_BLOB",
        json.dumps({"conn_type": "wasb", "extra": {"connection_string": account}}),
    )
    monkeypatch.setenv("AIRFLOW_VAR_VIDEOSTYLE_LAUNCHER", "kubernetes")
    monkeypatch.setenv(
        "AIRFLOW_VAR_VIDEOSTYLE_KUBERNETES",
        json.dumps({"namespace": NAMESPACE, "poll_interval_seconds": 0.01}),
    )

    def publish() -> Any:
        return step_task(
            "publish",
            task_id="publish",
            args=["--job", "j1"],
            outlets=[PUBLISHED_VIDEOS],
            execution_timeout=timedelta(minutes=15),
            durable=False,  # reattaching lists pods by a selector the emulator does not know
        )

    figures = {
        "job": "j1",
        "frames": 50,
        "fps": "24000/1001",
        "width": 192,
        "height": 108,
        "duration_s": 2.09,
        "style": "scream",
        "strength": 0.5,
        "sha256": "ab" * 32,
        "bytes": 1234,
    }
    uris = {
        "output_uri": "az://videos-out/clip#1.mp4/scream-s50.mp4",
        "preview_uri": "az://videos-out/clip#1.mp4/scream-s50.png",
        "report_uri": "az://videos-out/clip#1.mp4/scream-s50.json",
    }
    names = {"output": "clip#1.mp4/scream-s50.mp4", "container": "videos-out"}
    context = task_context()
    context["outlet_events"] = OutletEventAccessors()
    with pytest.raises(TaskDeferred):
        publish().execute(context)
    (pod,) = kube.objects(PODS)
    finish(kube, pod, exit_code=0, log=json.dumps(names | uris | figures) + "\n")
    event = {"status": "success", "namespace": NAMESPACE, "name": pod, "message": "done"}
    publish().trigger_reentry(context, event)

    assert publish().operator_extra_links == PUBLICATION_LINKS
    announced = context["outlet_events"][PUBLISHED_VIDEOS].asset_alias_events
    assert [(e.dest_asset_key.name, e.dest_asset_key.uri, e.extra) for e in announced] == [
        (
            "videos-out/clip#1.mp4/scream-s50.mp4",
            "az://videos-out/clip%231.mp4/scream-s50.mp4",
            figures | uris,
        )
    ]
