"""Stuck work: a step past its execution_timeout fails, and its whole process tree goes."""

import sys
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState

from videostyle_airflow import local_step
from videostyle_airflow.config import PROCESS_DAG_ID

pytestmark = pytest.mark.airflow


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.usefixtures("airflow_env")
def test_scoring_past_its_timeout_fails_and_leaves_no_rank_behind(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "rank.pid"
    stuck = (  # stands in for mpirun and a rank that never finishes
        "import subprocess, time\n"
        "rank = subprocess.Popen(['sleep', '300'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(rank.pid))\n"
        "time.sleep(300)\n"
    )

    def argv(step: str, args: list[str], *, ranks: int = 1) -> list[str]:
        return [sys.executable, "-c", stuck if step == "score" else "pass"]

    monkeypatch.setattr(local_step, "step_argv", argv)
    dag = DagBag().dags[PROCESS_DAG_ID]
    score = dag.get_task("score")
    score.execution_timeout, score.retries = timedelta(seconds=5), 0

    run = dag.test(run_conf={"video": "clip.mp4"})

    assert run.state == DagRunState.FAILED
    with create_session() as session:
        states = {ti.task_id: ti.state for ti in session.merge(run).get_task_instances()}
    assert states["score"] == TaskInstanceState.FAILED
    assert not _alive(int(pid_file.read_text()))
