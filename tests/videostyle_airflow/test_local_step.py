"""The local launcher runs a step's command line as a child and maps its outcome for Airflow."""

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from tests.videostyle_airflow.operator_doubles import RecordedLog, TaskInstance
from videostyle_airflow import local_step
from videostyle_airflow.launchers import step_task
from videostyle_airflow.local_step import LocalStepOperator

CONNECTION_STRING = "DefaultEndpointsProtocol=https;AccountName=fake;AccountKey=c2VjcmV0;"


@pytest.fixture(autouse=True)
def blob_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_VIDEOSTYLE_BLOB",
        f'{{"conn_type": "wasb", "extra": {{"connection_string": "{CONNECTION_STRING}"}}}}',
    )


@pytest.fixture
def child_code(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every step run the Python code appended to the returned list instead of the CLI."""
    code: list[str] = []

    def fake_step_argv(step: str, args: list[str], *, ranks: int = 1) -> list[str]:
        return [sys.executable, "-c", code[0], step, *args]

    monkeypatch.setattr(local_step, "step_argv", fake_step_argv)
    return code


def run_step(step: str, **kwargs: Any) -> Any:
    op = LocalStepOperator(task_id=step, step=step, args=["--job", "j1"], **kwargs)
    return op.execute(context={})


def test_result_line_is_returned_and_the_child_gets_sas_not_the_key(
    child_code: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", CONNECTION_STRING)
    child_code.append(
        "import json, os, sys\n"
        "assert 'c2VjcmV0' not in repr(os.environ)\n"
        "assert 'AZURE_STORAGE_CONNECTION_STRING' not in os.environ\n"
        "assert 'VIDEOSTYLE_INPUTS_CONNECTION_STRING' not in os.environ\n"
        "for store in ('WORK', 'OUTPUTS'):\n"
        "    sas = os.environ[f'VIDEOSTYLE_{store}_CONNECTION_STRING']\n"
        "    assert 'SharedAccessSignature=' in sas\n"
        "assert sys.argv[1:] == ['publish', '--job', 'j1']\n"
        "print('progress', flush=True)\n"
        "print(json.dumps({'output': 'j1.mp4', 'report': 'j1.json'}), flush=True)\n"
        "print('a late log line', file=sys.stderr)\n"
    )
    result = run_step("publish", returns_result_line=True)
    assert result == {"output": "j1.mp4", "report": "j1.json"}


def test_steps_without_a_result_return_nothing(child_code: list[str]) -> None:
    child_code.append('print(\'{"not": "a result"}\')')
    assert run_step("stitch") is None


def test_bad_input_fails_without_retry(child_code: list[str]) -> None:
    child_code.append("raise SystemExit(3)")
    with pytest.raises(AirflowFailException, match=r"bad input or parameter \(exit code 3\)"):
        run_step("preprocess")


def test_other_failures_are_retryable(child_code: list[str]) -> None:
    child_code.append("raise SystemExit(1)")
    with pytest.raises(AirflowException, match="exit code 1") as failure:
        run_step("score")
    assert not isinstance(failure.value, AirflowFailException)


QUARANTINED = (
    "2026-01-01 10:00:00,000 videostyle.steps.preprocess ERROR quarantined 'clip.mp4': "
    "'clip.mp4' is not a readable video: moov atom not found"
)
FAILED = (
    "2026-01-01 10:00:00,001 videostyle ERROR preprocess failed: "
    "'clip.mp4' is not a readable video: moov atom not found"
)


@pytest.mark.parametrize(
    ("code", "failure", "says"),
    [
        (3, AirflowFailException, "preprocess failed"),  # bad input: no retry
        (1, AirflowException, "preprocess failed with exit code 1"),
    ],
)
def test_a_failure_says_the_steps_reason_last_and_in_xcom(
    child_code: list[str],
    task_log: RecordedLog,
    code: int,
    failure: type[AirflowException],
    says: str,
) -> None:
    child_code.append(
        "import sys\n"
        f"print({QUARANTINED!r}, file=sys.stderr, flush=True)\n"
        f"print({FAILED!r}, file=sys.stderr, flush=True)\n"
        f"raise SystemExit({code})\n"
    )
    ti = TaskInstance()
    op = LocalStepOperator(task_id="preprocess", step="preprocess", args=["--job", "j1"])
    with pytest.raises(failure) as raised:
        op.execute(context={"ti": ti})  # type: ignore[typeddict-item]  # the TI double lacks the Protocol's static methods

    assert type(raised.value) is failure
    reason = "'clip.mp4' is not a readable video: moov atom not found"
    assert str(raised.value) == f"{says}: {reason}"
    assert ti.xcoms == {"failure": reason}
    assert task_log.text[-1] == FAILED  # then the exception, naming the same reason


def test_the_ranks_progress_is_summed_into_job_lines_as_it_comes(
    child_code: list[str], task_log: RecordedLog
) -> None:
    ranks = [
        "progress rank 0/2: 0/10 frames (0%), 0.0 frames/s, ETA unknown",
        "progress rank 1/2: 0/11 frames (0%), 0.0 frames/s, ETA unknown",
        "progress rank 0/2: 10/10 frames (100%), 2.0 frames/s, ETA 0 s",
        "progress rank 1/2: 11/11 frames (100%), 2.5 frames/s, ETA 0 s",
    ]
    child_code.append(
        "import sys\n"
        f"for line in {ranks!r}:\n"
        "    print('2026-01-01 10:00:00,000 videostyle.progress INFO', line, file=sys.stderr)\n"
    )
    run_step("score")

    logged = [
        line.removeprefix("2026-01-01 10:00:00,000 videostyle.progress INFO ")
        for line in task_log.text
    ]
    assert logged[logged.index(ranks[0]) :] == [
        ranks[0],
        ranks[1],
        "progress job: 0/21 frames (0%), 0.0 frames/s, ETA unknown",
        ranks[2],  # the next job line is not due yet, unless it says the job is done
        ranks[3],
        "progress job: 21/21 frames (100%), 4.5 frames/s, ETA 0 s",
    ]


def test_a_connection_without_connection_string_fails(
    child_code: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOSTYLE_BLOB", '{"conn_type": "wasb", "extra": {}}')
    child_code.append("pass")
    with pytest.raises(AirflowFailException, match="connection_string"):
        run_step("stitch")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_on_kill_stops_the_whole_process_group(
    child_code: list[str], task_log: RecordedLog, tmp_path: Path
) -> None:
    # The child stands in for mpirun: killing it alone would leave its ranks running.
    pid_file = tmp_path / "rank.pid"
    child_code.append(
        "import subprocess, sys, time\n"
        "rank = subprocess.Popen(['sleep', '300'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(rank.pid))\n"
        "print('rank started', flush=True)\n"
        "time.sleep(300)\n"
    )
    op = LocalStepOperator(task_id="score", step="score", args=["--job", "j1"])
    outcome: list[BaseException] = []

    def execute() -> None:
        try:
            op.execute(context={})
        except AirflowException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=execute, daemon=True)  # a failed test does not hang
    runner.start()
    # The operator copies the child's line into the task log only once it holds the child,
    # and the child prints it only once its rank runs: both are there to be stopped.
    _wait_for(lambda: "rank started" in task_log.text, "the step's rank started")
    rank_pid = int(pid_file.read_text())

    op.on_kill()
    runner.join(timeout=60)

    assert not runner.is_alive()
    assert outcome, "a killed step must not succeed"
    _wait_for(lambda: not _alive(rank_pid), "the rank stopped")


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    """Poll a state until it holds; the timeout only bounds a test that would hang."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f} s: {what}"
        time.sleep(0.02)


def test_step_task_builds_the_configured_launcher() -> None:
    op = step_task("score", task_id="score", args=["--job", "j"], ranks="{{ params.ranks }}")
    assert isinstance(op, LocalStepOperator)
    assert op.ranks == "{{ params.ranks }}"
    assert set(op.template_fields) == {"args", "ranks"}
    assert step_task("publish", task_id="publish", args=[]).returns_result_line  # type: ignore[attr-defined]


def test_an_unknown_launcher_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_VIDEOSTYLE_LAUNCHER", "slurm")
    with pytest.raises(ValueError, match="VIDEOSTYLE_LAUNCHER='slurm' names no launcher"):
        step_task("score", task_id="score", args=[])


def test_an_unknown_step_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown step 'train'"):
        step_task("train", task_id="train", args=[])
