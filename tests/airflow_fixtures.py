"""Airflow for the DAG and plugin tests (a pytest plugin, loaded by tests/conftest.py): a
private AIRFLOW_HOME with a migrated SQLite database.

`airflow_env` gives a test that home plus Azurite behind the `videostyle_blob` connection and
fresh containers (from `blob_env`). It returns the environment for an Airflow subprocess, e.g.

    subprocess.run([sys.executable, "-m", "airflow", "dags", "test", "videostyle_process",
                    "-c", json.dumps({"video": "clip.mp4"})], env=airflow_env, check=True)

(it exits non-zero when the run fails) and sets the same variables in this process, for
`dag.test()`.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.connections import wasb_connection_uri
from tests.videostyle_airflow.operator_doubles import RecordedLog

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag

ROOT = Path(__file__).resolve().parents[1]

# Airflow reads its configuration once, on first import, and test modules import it while
# being collected: the private home has to be in the environment before any of them is
# (and this module imports Airflow only inside fixtures).
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="videostyle-airflow-home-"))
DAGS_FOLDER = ROOT / "dags"
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    }
)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The session's AIRFLOW_HOME, its SQLite metadata database migrated (once)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True
    )
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def dag_bag(airflow_home: Path) -> "DagBag":
    """The DAGs folder parsed as the DAG processor would, with a fake storage connection."""
    from airflow.dag_processing.dagbag import DagBag

    fake = "DefaultEndpointsProtocol=https;AccountName=fake;AccountKey=ZmFrZQ==;"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_CONN_VIDEOSTYLE_BLOB", wasb_connection_uri(fake))
        return DagBag()


@pytest.fixture
def blob_connection(azurite: str, blob_env: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The `videostyle_blob` connection points at Azurite; returns `blob_env`'s container prefix."""
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOSTYLE_BLOB", wasb_connection_uri(azurite))
    return blob_env


@pytest.fixture
def airflow_env(airflow_home: Path, blob_connection: str) -> dict[str, str]:
    """Environment of an Airflow whose `videostyle_blob` connection is Azurite (see above)."""
    return dict(os.environ)


@pytest.fixture
def task_log(monkeypatch: pytest.MonkeyPatch) -> RecordedLog:
    """The local launcher's task log, recorded (every LocalStepOperator's, for one test)."""
    from videostyle_airflow.local_step import LocalStepOperator

    recorded = RecordedLog()
    monkeypatch.setattr(LocalStepOperator, "log", property(lambda self: recorded))
    return recorded
