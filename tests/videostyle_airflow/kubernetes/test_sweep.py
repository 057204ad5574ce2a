"""The sweeper against an EMULATED Kubernetes API (kmock over real HTTP, see conftest.py), and
the DAG that runs it: only under the Kubernetes launcher, hourly, within the DAG policies.
"""

import datetime
import json
from typing import Any, cast

import kmock
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import Context

from tests.videostyle_airflow.kubernetes.conftest import (
    MPIJOBS,
    NAMESPACE,
    SECRETS,
    EmulatedKubernetes,
)
from videostyle_airflow.config import OWNER, PROCESS_DAG_ID
from videostyle_airflow.kubernetes.hook import (
    API_VERSION,
    KIND,
    TASK_RUN_LABEL,
    owner_reference,
)
from videostyle_airflow.kubernetes.sweep import SWEEP_MARGIN, SweepOrphansOperator
from videostyle_airflow.provision import DEFAULT_POOL

SWEEP_DAG_ID = "videostyle_sweep"
MAX_AGE = datetime.timedelta(hours=4, minutes=30)


def _ago(delta: datetime.timedelta) -> str:
    return (datetime.datetime.now(datetime.UTC) - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mpijob(name: str, *, age: datetime.timedelta, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "labels": labels, "creationTimestamp": _ago(age)},
        "spec": {},
        "status": {"conditions": [{"type": "Running", "status": "True"}]},
    }


def _secret(
    name: str,
    *,
    age: datetime.timedelta,
    labels: dict[str, str],
    owner: dict[str, str] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": labels, "creationTimestamp": _ago(age)}
    if owner:
        metadata["ownerReferences"] = [owner]
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "data": {}}


def _sweep() -> Any:
    operator = SweepOrphansOperator(task_id="sweep", namespace=NAMESPACE, max_age=MAX_AGE)
    return operator.execute(cast(Context, {}))


def test_the_sweep_deletes_old_orphans_and_nothing_else__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    old, young = datetime.timedelta(hours=6), datetime.timedelta(minutes=10)
    ours = {"app.kubernetes.io/name": "videostyle", TASK_RUN_LABEL: "0123456789"}
    other_run = {"app.kubernetes.io/name": "videostyle", TASK_RUN_LABEL: "9876543210"}
    # A try that died between creating its MPIJob (and the Secret the MPIJob owns) and
    # deferring, and a step's Secret whose try died before its pod existed.
    kube.put(MPIJOBS, _mpijob("score-0123456789-t1", age=old, labels=ours))
    orphan_uid = kube.objects(MPIJOBS)["score-0123456789-t1"]["metadata"]["uid"]
    owner = owner_reference(
        api_version=API_VERSION, kind=KIND, name="score-0123456789-t1", uid=orphan_uid
    )
    kube.put(SECRETS, _secret("score-0123456789-t1-env", age=old, labels=ours, owner=owner))
    kube.put(SECRETS, _secret("preprocess-0123456789-t1-env", age=old, labels=ours))
    # Another run's score, running now.
    kube.put(MPIJOBS, _mpijob("score-9876543210-t2", age=young, labels=other_run))
    kube.put(SECRETS, _secret("score-9876543210-t2-env", age=young, labels=other_run))
    # Not ours however old: no task-run label.
    kube.put(MPIJOBS, _mpijob("someone-elses", age=datetime.timedelta(days=3), labels={}))
    kube.put(
        SECRETS,
        _secret(
            "someone-elses",
            age=datetime.timedelta(days=3),
            labels={"app.kubernetes.io/name": "videostyle"},
        ),
    )

    swept = _sweep()

    assert swept == {
        "mpijobs": ["score-0123456789-t1"],
        # The MPIJob's own Secret went with it (garbage collection): only the step's is left.
        "secrets": ["preprocess-0123456789-t1-env"],
    }
    assert set(kube.objects(MPIJOBS)) == {"score-9876543210-t2", "someone-elses"}
    assert set(kube.objects(SECRETS)) == {"score-9876543210-t2-env", "someone-elses"}
    deleted = [
        (request.resource, request.name)
        for request in kube.requests()
        if request.action == kmock.action.DELETE
    ]
    assert deleted == [
        (kmock.resource(MPIJOBS), "score-0123456789-t1"),
        (kmock.resource(SECRETS), "preprocess-0123456789-t1-env"),
    ]


def test_a_sweep_with_nothing_old_deletes_nothing__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    labels = {TASK_RUN_LABEL: "0123456789"}
    just_young = MAX_AGE - datetime.timedelta(minutes=5)
    kube.put(MPIJOBS, _mpijob("score-0123456789-t1", age=just_young, labels=labels))
    kube.put(SECRETS, _secret("score-0123456789-t1-env", age=just_young, labels=labels))

    assert _sweep() == {"mpijobs": [], "secrets": []}
    assert set(kube.objects(MPIJOBS)) == {"score-0123456789-t1"}
    assert set(kube.objects(SECRETS)) == {"score-0123456789-t1-env"}


def _dag_bag(launcher: str, monkeypatch: pytest.MonkeyPatch) -> DagBag:
    monkeypatch.setenv("AIRFLOW_VAR_VIDEOSTYLE_LAUNCHER", launcher)
    monkeypatch.setenv("AIRFLOW_VAR_VIDEOSTYLE_KUBERNETES", json.dumps({"namespace": "media"}))
    bag = DagBag()
    assert bag.import_errors == {}
    return bag


@pytest.mark.usefixtures("airflow_home")
def test_the_sweep_dag_exists_under_the_kubernetes_launcher_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert SWEEP_DAG_ID not in _dag_bag("local", monkeypatch).dag_ids

    bag = _dag_bag("kubernetes", monkeypatch)
    dag = bag.dags[SWEEP_DAG_ID]
    (sweep,) = dag.tasks
    assert isinstance(sweep, SweepOrphansOperator)
    assert sweep.namespace == "media"
    # The DAG policies (tests/dags/test_dag_integrity.py), its Kubernetes connection aside:
    # the guide creates that one by hand.
    assert "videostyle" in dag.tags
    assert (sweep.owner, sweep.pool) == (OWNER, DEFAULT_POOL)
    assert (sweep.retries or 0) >= 1
    assert sweep.execution_timeout is not None
    assert sweep.kubernetes_conn_id == "kubernetes_default"
    assert str(dag.schedule) == "@hourly"

    # Older than any try of the process DAG can live, and the margin.
    process = bag.dags[PROCESS_DAG_ID]
    longest = max(task.execution_timeout for task in process.tasks if task.execution_timeout)
    assert sweep.max_age >= longest + SWEEP_MARGIN
