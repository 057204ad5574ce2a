"""Two storage accounts: the videos', and the one holding Airflow's logs (README, Credentials).

The code has no notion of the logs account: a deployment gives it to Airflow alone, as
Airflow's remote logging (`[logging] remote_log_conn_id` naming a wasb connection), here in the
workers' environment (AIRFLOW__LOGGING__*, AIRFLOW_CONN_*), from which the steps are launched.
Nothing of that account (its name, its key, its endpoint) may reach a step, on either launcher:
not a local step's environment, not a step pod, the scoring MPIJob or the Secrets they read, not
the objects `make k8s-manifests` renders. And every credential a step gets is for the videos'
account. Each step is launched for real: locally as a child process that reports the
environment it got, on Kubernetes against the emulated API
(tests/videostyle_airflow/kubernetes/conftest.py).
"""

import base64
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import quote

import pytest
from airflow.sdk import Context
from airflow.sdk.exceptions import TaskDeferred

from tests.connections import wasb_connection_uri
from tests.videostyle_airflow.kubernetes.conftest import (  # noqa: F401 (fixtures, by name)
    NAMESPACE,
    EmulatedKubernetes,
    kube_api,
    kubernetes_connection,
)
from tests.videostyle_airflow.operator_doubles import TaskInstance
from videostyle.steps.table import STEPS
from videostyle_airflow import local_step
from videostyle_airflow.local_step import LocalStepOperator

ROOT = Path(__file__).resolve().parents[2]

VIDEOS_ACCOUNT = "videosacct"
VIDEOS_KEY = base64.b64encode(b"the videos account's own key!!!!").decode()
VIDEOS_ENDPOINT = f"https://{VIDEOS_ACCOUNT}.blob.core.windows.net/"
LOGS_ACCOUNT = "airflowlogs"
LOGS_KEY = base64.b64encode(b"a different account's key, 32 b").decode()
LOGS_ENDPOINT = f"https://{LOGS_ACCOUNT}.blob.core.windows.net/"
LOGS_CONN_ID = "wasb_logs"
# Every form in which the logs account could show: its name (in its endpoint too), its key,
# raw and URL-encoded.
LOGS_TRACES = (LOGS_ACCOUNT, LOGS_KEY, quote(LOGS_KEY, safe=""))


def connection_string(account: str, key: str) -> str:
    return (
        f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={key};"
        "EndpointSuffix=core.windows.net"
    )


# The workers' environment in such a deployment: the videos' account behind videostyle_blob,
# and Airflow's remote logging to the logs account.
DEPLOYMENT = {
    "AIRFLOW_CONN_VIDEOSTYLE_BLOB": wasb_connection_uri(
        connection_string(VIDEOS_ACCOUNT, VIDEOS_KEY)
    ),
    "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
    "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": LOGS_CONN_ID,
    "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": "wasb-airflow-logs",
    "AIRFLOW__AZURE_REMOTE_LOGGING__REMOTE_WASB_LOG_CONTAINER": "airflow-logs",
    f"AIRFLOW_CONN_{LOGS_CONN_ID.upper()}": json.dumps(
        {
            "conn_type": "wasb",
            "login": LOGS_ACCOUNT,
            "password": LOGS_KEY,
            "extra": {"connection_string": connection_string(LOGS_ACCOUNT, LOGS_KEY)},
        }
    ),
}
KUBERNETES = {"namespace": NAMESPACE, "poll_interval_seconds": 0.01}


@pytest.fixture(autouse=True)
def deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in DEPLOYMENT.items():
        monkeypatch.setenv(name, value)


def traces_of_the_logs_account(text: str) -> list[str]:
    return [trace for trace in LOGS_TRACES if trace.lower() in text.lower()]


def assert_credentials_are_the_videos_accounts(env: dict[str, str]) -> None:
    """Each storage credential of a step's env is a SAS for the videos' account; one at least."""
    credentials = {
        name: value for name, value in env.items() if name.endswith("_CONNECTION_STRING")
    }
    assert credentials
    for value in credentials.values():
        fields = dict(field.split("=", 1) for field in value.split(";") if field)
        assert set(fields) == {"BlobEndpoint", "SharedAccessSignature"}
        assert fields["BlobEndpoint"] == VIDEOS_ENDPOINT


def test_airflow_itself_logs_to_the_logs_account() -> None:
    """The deployment above is what it says: Airflow's remote logging reaches the logs account."""
    from airflow.configuration import conf
    from airflow.providers.microsoft.azure.hooks.wasb import WasbHook

    assert conf.getboolean("logging", "remote_logging")
    remote_log_conn_id = conf.get("logging", "remote_log_conn_id")
    assert WasbHook(remote_log_conn_id).get_conn().account_name == LOGS_ACCOUNT


@pytest.mark.parametrize("step", STEPS)
def test_a_local_step_gets_nothing_of_the_logs_account(
    step: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reported = tmp_path / "env.json"

    def reporting_argv(step: str, args: list[str], *, ranks: int = 1) -> list[str]:
        # The step's process itself, as launched, writes down the environment it was given.
        code = "import json, os, sys; open(sys.argv[1], 'w').write(json.dumps(dict(os.environ)))"
        return [sys.executable, "-c", code, str(reported)]

    monkeypatch.setattr(local_step, "step_argv", reporting_argv)
    LocalStepOperator(task_id=step, step=step, args=["--job", "j1"]).execute(
        context=cast(Context, {})
    )

    env = json.loads(reported.read_text())
    assert traces_of_the_logs_account(json.dumps(env)) == []
    assert_credentials_are_the_videos_accounts(env)


def task_context(step: str) -> Context:
    ti = TaskInstance(
        dag_id="videostyle_process",
        run_id="manual__2026-01-01T00:00:00+00:00",
        task_id=step,
        map_index=-1,
        try_number=1,
        start_date=datetime.now(UTC),
    )
    return cast(
        Context,
        {"ti": ti, "run_id": ti.run_id, "dag": SimpleNamespace(), "params": {}},
    )


def sent_and_stored(kube: EmulatedKubernetes) -> str:
    """Every object the emulated API received or holds, as text: as they are, and with their
    `data` (a Secret's, in base64) decoded."""
    bodies = [request.data for request in kube.requests() if isinstance(request.data, dict)]
    stored = [
        obj
        for resource in ("v1/pods", "v1/secrets", "kubeflow.org/v2beta1/mpijobs")
        for obj in kube.objects(resource).values()
    ]
    decoded = [
        {key: base64.b64decode(value).decode() for key, value in obj["data"].items()}
        for obj in [*bodies, *stored]
        if isinstance(obj.get("data"), dict)
    ]
    return json.dumps([*bodies, *stored, *decoded])


def secrets_env(kube: EmulatedKubernetes) -> dict[str, str]:
    """The variables of every Secret the emulated API holds, decoded."""
    env: dict[str, str] = {}
    for secret in kube.objects("v1/secrets").values():
        env |= secret.get("stringData") or {}
        env |= {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    return env


@pytest.mark.parametrize("step", STEPS)
def test_a_kubernetes_step_gets_nothing_of_the_logs_account__emulated_api(
    step: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from videostyle_airflow.kubernetes.launcher import kubernetes_step_operator

    kube: EmulatedKubernetes = request.getfixturevalue("kubernetes_connection")
    monkeypatch.setenv("AIRFLOW_VAR_VIDEOSTYLE_KUBERNETES", json.dumps(KUBERNETES))
    operator: Any = kubernetes_step_operator(
        step,
        task_id=step,
        args=["--job", "j1"],
        ranks=2,
        execution_timeout=timedelta(minutes=30),
    )
    context = task_context(step)
    operator.render_template_fields(context)
    with pytest.raises(TaskDeferred):  # the pod or MPIJob runs; its Secret is there
        operator.execute(context)

    env = secrets_env(kube)
    assert_credentials_are_the_videos_accounts(env)
    assert traces_of_the_logs_account(json.dumps(env)) == []
    assert traces_of_the_logs_account(sent_and_stored(kube)) == []


def test_the_rendered_manifests_hold_nothing_of_the_logs_account(tmp_path: Path) -> None:
    """`make k8s-manifests`, run from a worker's environment in that deployment."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_VAR_", "AIRFLOW_CONN_"))
    }
    env |= DEPLOYMENT | {"AIRFLOW_VAR_VIDEOSTYLE_KUBERNETES": json.dumps(KUBERNETES)}
    subprocess.run(
        ["make", "--old-file=.venv/bin/.installed", "k8s-manifests", f"OUT={tmp_path}"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )

    manifests = {path.name: path.read_text() for path in sorted(tmp_path.glob("*.yaml"))}
    rendered = {name.split("-")[1] for name in manifests}
    assert rendered == set(STEPS)  # every step's objects, Secrets included
    assert {name: traces_of_the_logs_account(text) for name, text in manifests.items()} == {
        name: [] for name in manifests
    }
