"""The local launcher: one CLI step as a child process of the Airflow worker."""

import contextlib
import json
import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Sequence
from typing import IO, Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from videostyle.errors import BadInputError
from videostyle.launch import step_argv, step_env
from videostyle_airflow import credentials
from videostyle_airflow.config import BLOB_CONN_ID

# The CLI's exit code for an unusable input: retrying cannot help.
BAD_INPUT_EXIT_CODE = BadInputError.exit_code
_GRACE_S = 30  # between SIGTERM and SIGKILL: time for mpirun to stop its ranks


class LocalStepOperator(BaseOperator):
    """
    Run one videostyle CLI step (`python -m videostyle STEP ARGS`, under mpirun for scoring).

    The step never sees the storage account key of the wasb connection `wasb_conn_id`: it gets
    `credentials.step_env`, short-lived SAS connection strings for just the containers and
    permissions it needs (masked in the log, never returned), and none of this process's
    account-wide credential variables. Exit code 3 (bad input) fails the task without retries;
    any other failure raises a retryable error.

    :param step: the CLI step: preprocess, score, stitch or publish.
    :param args: the step's arguments after its name (templated).
    :param ranks: MPI processes for the step (templated; may render to a string).
    :param wasb_conn_id: the wasb connection holding the storage connection string.
    :param returns_result_line: return the last stdout line, parsed as JSON (it goes to XCom).
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
        self._child: subprocess.Popen[str] | None = None

    def execute(self, context: Context) -> Any:
        argv = step_argv(self.step, [str(a) for a in self.args], ranks=int(self.ranks))
        env = credentials.without_ambient_credentials(step_env()) | credentials.step_env(
            self.step,
            conn_id=self.wasb_conn_id,
            ttl=credentials.credential_ttl(self.execution_timeout),
        )
        self.log.info("Running %s", shlex.join(argv))
        self._child = subprocess.Popen(
            argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",  # ffmpeg may print bytes that are not UTF-8
            # Its own process group, so stopping it reaches mpirun's ranks too.
            start_new_session=True,
        )
        try:
            last_line = self._stream_output(self._child)
            code = self._child.wait()
        finally:
            self._stop_child()
        if code == BAD_INPUT_EXIT_CODE:
            raise AirflowFailException(f"{self.step}: the input is unusable (exit code {code})")
        if code != 0:
            raise AirflowException(f"{self.step} failed with exit code {code}")
        if not self.returns_result_line:
            return None
        try:
            return json.loads(last_line)
        except json.JSONDecodeError as exc:
            raise AirflowException(f"{self.step} ended without a JSON result line") from exc

    def on_kill(self) -> None:
        self._stop_child()

    def _stream_output(self, child: subprocess.Popen[str]) -> str:
        """Copy the child's stderr and stdout into the task log; return stdout's last line."""
        assert child.stdout is not None
        assert child.stderr is not None
        stderr_copier = threading.Thread(target=self._log_lines, args=(child.stderr,), daemon=True)
        stderr_copier.start()
        last_line = ""
        for line in child.stdout:
            self.log.info("%s", line.rstrip("\n"))
            if line.strip():
                last_line = line
        stderr_copier.join()
        return last_line

    def _log_lines(self, stream: IO[str]) -> None:
        for line in stream:
            self.log.info("%s", line.rstrip("\n"))

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
