"""How a failed step fails its task, whichever launcher ran it: with the step's own reason.

The reason is what the step's failure line said (`<step> failed: <reason>`, see
videostyle.errors): the task's failure message ends with it, and it is pushed to XCom under
FAILURE_XCOM_KEY, for the UI's XCom tab. The CLI's bad-input exit code fails the task without
retries; any other failure stays retryable.
"""

from collections.abc import Iterable
from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from videostyle.steps.table import result_of

# The XCom under which a failed step leaves its reason, for the UI's XCom tab.
FAILURE_XCOM_KEY = "failure"


def step_failure(
    context: Context,
    subject: str,
    reason: str | None,
    *,
    bad_input: bool,
    exit_code: str,
    failed: str | None = None,
    reason_after: str = ": ",
) -> AirflowException:
    """
    Push `reason`, if there is one, to XCom; return the exception that fails the task.

    Bad input: AirflowFailException, `<subject> failed: <reason>`, or without a reason
    `<subject>: bad input or parameter (<exit_code>)`. Otherwise a retryable AirflowException,
    `<subject> <failed><reason_after><reason>`, or without a reason `<subject> <failed>`.

    :param subject: what failed: the step ("publish"), or the MPIJob that ran it.
    :param reason: the reason the step's failure line gave; None (or empty) when it gave none.
    :param bad_input: whether it exited with BAD_INPUT_EXIT_CODE.
    :param exit_code: the exit code as the message names it, e.g. "exit code 3".
    :param failed: what a retryable failure says after the subject; by default
        "failed with <exit_code>".
    :param reason_after: what joins a retryable failure's message to the reason.
    """
    if reason:
        context["ti"].xcom_push(key=FAILURE_XCOM_KEY, value=reason)
    if bad_input:
        return AirflowFailException(
            f"{subject} failed: {reason}"
            if reason
            else f"{subject}: bad input or parameter ({exit_code})"
        )
    said = f"{reason_after}{reason}" if reason else ""
    return AirflowException(f"{subject} {failed or f'failed with {exit_code}'}{said}")


def step_result(step: str, output: Iterable[str]) -> Any:
    """The result line among the step's last `output` lines, parsed (steps.table.result_of);
    a retryable failure of the task when there is none."""
    try:
        return result_of(output)
    except ValueError as exc:
        raise AirflowException(f"{step}: {exc}") from exc
