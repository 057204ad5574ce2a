"""Stuck work: a step past its execution_timeout fails, and its whole process tree goes."""

import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import AirflowTaskTimeout
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState

from videostyle_airflow import local_step
from videostyle_airflow.config import PROCESS_DAG_ID

pytestmark = pytest.mark.airflow

TIMEOUT = timedelta(seconds=3)
START_BOUND_S = 120  # a bound only: on a loaded machine the stand-in may take this to start


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in "ZX"


def _wait_for(condition: Any, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f} s: {what}"
        time.sleep(0.02)


@pytest.mark.usefixtures("airflow_env")
def test_scoring_past_its_timeout_fails_and_leaves_no_rank_behind(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "rank.pid"
    stuck = (  # stands in for mpirun and a rank that never finishes
        "import os, subprocess, time\n"
        "rank = subprocess.Popen(['sleep', '300'])\n"
        f"open({str(pid_file)!r} + '.tmp', 'w').write(str(rank.pid))\n"
        f"os.rename({str(pid_file)!r} + '.tmp', {str(pid_file)!r})\n"
        "time.sleep(300)\n"
    )
    # The task's execution_timeout runs on the worker's ITIMER_REAL (Airflow's TimeoutPosix).
    # Its clock is held while the stand-in starts (from the launch until its rank's pid is
    # written), however long a loaded machine takes: the timeout then always meets the whole
    # tree running, and the test never races it.
    clock: dict[str, Any] = {}

    def argv(step: str, args: list[str], *, ranks: int = 1) -> list[str]:
        if step != "score":
            return [sys.executable, "-c", "pass"]
        clock["left_s"] = signal.setitimer(signal.ITIMER_REAL, 0)[0]  # held
        return [sys.executable, "-c", stuck]

    copy = local_step._StepOutput.copy

    def copy_once_started(output: Any, child: subprocess.Popen[str]) -> None:
        if "left_s" not in clock or "step" in clock:  # another step than score's first try
            copy(output, child)
            return
        clock["step"] = child.pid
        deadline = time.monotonic() + START_BOUND_S
        while not pid_file.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        clock["started"] = pid_file.exists()
        if clock["left_s"] > 0:
            signal.setitimer(signal.ITIMER_REAL, clock["left_s"])  # the clock runs again
        try:
            copy(output, child)
        except AirflowTaskTimeout:
            clock["timed_out"] = True
            raise

    monkeypatch.setattr(local_step, "step_argv", argv)
    monkeypatch.setattr(local_step._StepOutput, "copy", copy_once_started)
    dag = DagBag().dags[PROCESS_DAG_ID]
    score = dag.get_task("score")
    score.execution_timeout, score.retries = TIMEOUT, 0

    run = dag.test(run_conf={"video": "clip.mp4"})

    assert clock.get("left_s", 0) > 0, "the execution_timeout no longer runs on ITIMER_REAL"
    assert clock.get("started"), f"the stand-in did not start its rank in {START_BOUND_S} s"
    assert clock.get("timed_out"), "the step failed, but not by its execution_timeout"
    assert run.state == DagRunState.FAILED
    with create_session() as session:
        states = {ti.task_id: ti.state for ti in session.merge(run).get_task_instances()}
    assert states["score"] == TaskInstanceState.FAILED
    rank = int(pid_file.read_text())
    _wait_for(lambda: not _alive(clock["step"]) and not _alive(rank), "the tree gone")
