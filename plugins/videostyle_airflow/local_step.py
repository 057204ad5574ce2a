"""The local launcher: one CLI step as a child process of the Airflow worker."""

import contextlib
import os
import shlex
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from typing import IO, Any

from airflow.sdk import BaseOperator, Context

from videostyle.commands import process_env, step_argv
from videostyle.errors import BAD_INPUT_EXIT_CODE, failure_reason
from videostyle.progress import JobProgress
from videostyle_airflow import credentials, publication
from videostyle_airflow.config import BLOB_CONN_ID
from videostyle_airflow.step_failure import step_failure, step_result

_GRACE_S = 30  # between SIGTERM and SIGKILL: time for mpirun to stop its ranks
# Stdout lines kept to find the result line in (stderr has lines of its own).
_RESULT_TAIL_LINES = 20


class LocalStepOperator(BaseOperator):
    """
    Run one videostyle CLI step (`python -m videostyle STEP ARGS`, under mpirun for scoring).

    The step never sees the storage account key of the wasb connection `wasb_conn_id`: it gets
    `credentials.storage_env`, short-lived SAS connection strings for just the containers and
    permissions it needs (masked in the log, never returned), and none of this process's
    account-wide credential variables. Exit code 3 (bad input or parameter) fails the task
    without retries; any other failure raises a retryable error. A failure's message is the
    reason the step gave (its `<step> failed: <reason>` line), also pushed to XCom under
    FAILURE_XCOM_KEY (see step_failure). The step's output is copied into the task log line by
    line, and the ranks' progress lines are summed into the whole job's (`progress job: ...`).

    :param step: the CLI step, a row of the steps table (videostyle.steps.table).
    :param args: the step's arguments after its name (templated).
    :param ranks: MPI processes for the step (templated; may render to a string).
    :param wasb_conn_id: the wasb connection holding the storage connection string.
    :param returns_result_line: return the result line, the last JSON object it prints on
        stdout (it goes to XCom; see steps.table.result_of):
        publish's result, which its extra links open and `publication` announces.
    """

    template_fields: Sequence[str] = ("args", "ranks")
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        step: str,
        args: Sequence[str],
        ranks: int | str = 1,
        wasb_conn_id: str = BLOB_CONN_ID,
        returns_result_line: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.step = step
        self.args = args
        self.ranks = ranks
        self.wasb_conn_id = wasb_conn_id
        self.returns_result_line = returns_result_line
        if returns_result_line:  # publish's result: what it wrote, for a person to open
            self.operator_extra_links = publication.LINKS
        self._child: subprocess.Popen[str] | None = None

    def execute(self, context: Context) -> Any:
        argv = step_argv(self.step, [str(a) for a in self.args], ranks=int(self.ranks))
        env = credentials.without_ambient_credentials(process_env()) | credentials.storage_env(
            self.step,
            conn_id=self.wasb_conn_id,
            ttl=credentials.credential_ttl(self.execution_timeout),
        )
        self.log.info("Running %s", shlex.join(argv))
        output = _StepOutput(operator=self)
        # Leaving the block closes the child's pipes.
        with subprocess.Popen(
            argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",  # ffmpeg may print bytes that are not UTF-8
            # Its own process group. mpich's hydra gives its proxy and ranks sessions of their
            # own: mpirun forwards SIGTERM to them, and after a SIGKILL its proxy kills them.
            start_new_session=True,
        ) as child:
            self._child = child
            try:
                output.copy(child)
                code = child.wait()
            finally:
                self._stop_child()
        if code != 0:  # the exception's message, the step's own reason, ends the task log
            raise step_failure(
                context,
                self.step,
                output.failure,
                bad_input=code == BAD_INPUT_EXIT_CODE,
                exit_code=f"exit code {code}",
            )
        if not self.returns_result_line:
            return None
        result = step_result(self.step, output.stdout_tail)
        publication.announce_publication(context, result, outlets=self.outlets)
        return result

    def on_kill(self) -> None:
        self._stop_child()

    def _stop_child(self) -> None:
        child = self._child
        if child is None or child.poll() is not None:
            return
        self.log.info("Stopping %s (process group %s)", self.step, child.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=_GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


class _StepOutput:
    """A step's stdout and stderr, copied into the task log as they come, with what they say:
    the job's progress (summed from the ranks' lines), the failure reason, the result line."""

    def __init__(self, *, operator: LocalStepOperator) -> None:
        self._log = operator.log
        self._progress = JobProgress()
        self._lock = threading.Lock()  # two streams, one log and one progress
        self.failure: str | None = None
        self.stdout_tail: deque[str] = deque(maxlen=_RESULT_TAIL_LINES)

    def copy(self, child: subprocess.Popen[str]) -> None:
        """Copy both streams until the child closes them."""
        assert child.stdout is not None
        assert child.stderr is not None
        stderr_copier = threading.Thread(target=self._copy, args=(child.stderr,), daemon=True)
        stderr_copier.start()
        self._copy(child.stdout, stdout=True)
        stderr_copier.join()

    def _copy(self, stream: IO[str], *, stdout: bool = False) -> None:
        for line in stream:
            text = line.rstrip("\n")
            with self._lock:
                self._log.info("%s", text)
                if stdout:
                    self.stdout_tail.append(text)
                if (reason := failure_reason(text)) is not None:
                    self.failure = reason
                if (job := self._progress.feed(text)) is not None:
                    self._log.info("%s", job)
