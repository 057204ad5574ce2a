"""Every DAG imports cleanly and cheaply, and follows the project's policies."""

import json
import subprocess
import sys

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import DAG

from videostyle_airflow.config import OWNER, PROCESS_DAG_ID, WATCH_DAG_ID

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
        assert task.retries >= 1, task.task_id
        assert task.execution_timeout is not None, task.task_id
