"""Every DAG imports cleanly and cheaply, and follows the project's policies."""

import json
import subprocess
import sys
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import DAG

from tests.connections import wasb_connection_uri
from videostyle_airflow.config import OWNER, PROCESS_DAG_ID, WATCH_DAG_ID
from videostyle_airflow.provision import CONNECTIONS, DEFAULT_POOL, POOLS, VARIABLES

HEAVY_MODULES = {"torch", "mpi4py", "numpy", "kubernetes"}  # the local launcher loads no k8s client


def test_dags_import_without_errors(dag_bag: DagBag) -> None:
    assert dag_bag.import_errors == {}
    assert set(dag_bag.dag_ids) == {PROCESS_DAG_ID, WATCH_DAG_ID}


@pytest.mark.usefixtures("airflow_home")
def test_parsing_imports_no_heavy_libraries() -> None:
    # A fresh interpreter (this one may have imported anything by now), with this one's
    # Airflow settings: the DAGs folder comes from AIRFLOW__CORE__DAGS_FOLDER.
    script = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "bag = DagBag()\n"
        "print(json.dumps({'dags': sorted(bag.dag_ids), 'errors': list(bag.import_errors),\n"
        f"    'heavy': sorted({{m.split('.')[0] for m in sys.modules}} & {HEAVY_MODULES!r})}}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    )
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed == {"dags": [PROCESS_DAG_ID, WATCH_DAG_ID], "errors": [], "heavy": []}


@pytest.fixture(params=[PROCESS_DAG_ID, WATCH_DAG_ID])
def dag(request: pytest.FixtureRequest, dag_bag: DagBag) -> DAG:
    return dag_bag.dags[request.param]


def test_dag_is_tagged(dag: DAG) -> None:
    assert "videostyle" in dag.tags


def test_every_task_has_owner_retries_and_timeout(dag: DAG) -> None:
    for task in dag.tasks:
        assert task.owner == OWNER, task.task_id
        assert task.retries is not None, task.task_id
        assert task.retries >= 1, task.task_id
        assert task.execution_timeout is not None, task.task_id


def test_every_pool_and_connection_a_task_uses_is_provisioned(dag: DAG) -> None:
    # `make up`, compose's airflow-init and the deployment guide create exactly these; a task
    # waiting on a pool nobody made sits in "scheduled" forever.
    for task in dag.tasks:
        assert task.pool in {*POOLS, DEFAULT_POOL}, (task.task_id, task.pool)
        conn_ids = {
            getattr(task, name)
            for name in dir(task)
            if name.endswith("conn_id") and isinstance(getattr(task, name, None), str)
        }
        assert conn_ids <= set(CONNECTIONS), (task.task_id, conn_ids)


@pytest.mark.usefixtures("airflow_home")
def test_every_variable_a_dag_reads_is_provisioned(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import Variable

    read: set[str] = set()
    original = Variable.get

    def recording_get(key: str, *args: Any, **kwargs: Any) -> Any:
        read.add(key)
        return original(key, *args, **kwargs)

    monkeypatch.setattr(Variable, "get", recording_get)
    fake = "DefaultEndpointsProtocol=https;AccountName=fake;AccountKey=ZmFrZQ==;"
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOSTYLE_BLOB", wasb_connection_uri(fake))
    bag = DagBag()
    assert bag.import_errors == {}
    assert read, "parsing read no variable: the recorder is not in the DAGs' path"
    assert read <= VARIABLES.keys()
