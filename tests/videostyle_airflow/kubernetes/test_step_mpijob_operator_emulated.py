"""Scoring's try against an EMULATED Kubernetes API (kmock over real HTTP, see conftest.py).

What the score step adds to the MPIJob operator: the body built from the rendered rank count
and the score step's SAS minted when the try starts (offline, from a fake account key), given
to the operator's Secret and read by the launcher only.
"""

import base64
import json
from datetime import timedelta
from types import SimpleNamespace
from typing import cast

import pytest
from airflow.sdk import Context
from airflow.sdk.exceptions import TaskDeferred

from tests.videostyle_airflow.kubernetes.conftest import (
    MPIJOBS,
    NAMESPACE,
    SECRETS,
    EmulatedKubernetes,
)
from tests.videostyle_airflow.kubernetes.k8s_schemas import validate_mpijob
from videostyle_airflow.kubernetes.launcher import kubernetes_step_operator
from videostyle_airflow.kubernetes.step_mpijob_operator import StepMPIJobOperator

ACCOUNT_KEY = "ZmFrZS1hY2NvdW50LWtleQ=="


def test_the_score_try_builds_its_mpijob_and_secret_when_it_starts__emulated_api(
    kubernetes_connection: EmulatedKubernetes, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube = kubernetes_connection
    account = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY};"
    monkeypatch.setenv(
        "AIRFLOW_CONN_VIDEOSTYLE_BLOB",
        json.dumps({"conn_type": "wasb", "extra": {"connection_string": account}}),
    )
    watch = {"startup_timeout_seconds": 77, "worker_lost_seconds": 33}
    monkeypatch.setenv(
        "AIRFLOW_VAR_VIDEOSTYLE_KUBERNETES", json.dumps({"namespace": NAMESPACE} | watch)
    )
    operator = kubernetes_step_operator(
        "score",
        task_id="score",
        args=["--job", "{{ params.job }}"],
        ranks="{{ params.ranks }}",
        execution_timeout=timedelta(hours=4),
    )
    assert isinstance(operator, StepMPIJobOperator)
    ti = SimpleNamespace(
        dag_id="videostyle_process", run_id="manual__1", task_id="score", map_index=-1, try_number=1
    )
    context = cast(Context, {"ti": ti, "params": {"ranks": 3, "job": "j1"}})

    operator.render_template_fields(context)
    assert operator.secret_env is None  # nothing secret is rendered, nor minted at parse time
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    # The trigger watches with the configured times, not the defaults.
    _, fields = deferred.value.trigger.serialize()
    assert {key: fields[key] for key in watch} == watch

    (mpijob,) = kube.objects(MPIJOBS).values()
    # As sent: without what the emulated server added (uid, creationTimestamp).
    sent_metadata = ("name", "namespace", "labels", "annotations")
    validate_mpijob(mpijob | {"metadata": {k: mpijob["metadata"][k] for k in sent_metadata}})
    spec = mpijob["spec"]
    assert spec["mpiReplicaSpecs"]["Worker"]["replicas"] == 3
    launcher = spec["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]
    assert launcher["args"][:3] == ["mpirun", "-n", "3"]
    assert launcher["args"][-3:] == ["score", "--job", "j1"]
    ((secret_name, secret),) = kube.objects(SECRETS).items()
    assert launcher["envFrom"] == [{"secretRef": {"name": secret_name}}]
    worker = spec["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    assert "envFrom" not in worker
    env = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert sorted(env) == ["VIDEOSTYLE_WORK_CONNECTION_STRING", "VIDEOSTYLE_WORK_URL"]
    assert "SharedAccessSignature=" in env["VIDEOSTYLE_WORK_CONNECTION_STRING"]
    assert ACCOUNT_KEY not in json.dumps(env)
