"""Every condition and reason the MPI Operator (v2beta1) reports, mapped to Airflow's outcome."""

from typing import Any

import pytest

from videostyle.errors import BAD_INPUT_EXIT_CODE
from videostyle_airflow.kubernetes.mpijob_outcome import (
    Outcome,
    launcher_exit_code,
    mpijob_state,
)


def condition(type_: str, reason: str, status: str = "True") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": f"{type_}: {reason}"}


CREATED = condition("Created", "MPIJobCreated")
RUNNING = condition("Running", "MPIJobRunning")
# What the controller writes while an MPIJob is suspended, and after it is resumed.
SUSPENDED = [
    condition("Suspended", "MPIJobSuspended"),
    condition("Running", "MPIJobSuspended", "False"),
]
RESUMED = condition("Suspended", "MPIJobResumed", "False")
# Setting Succeeded or Failed turns Running (and an earlier Failed) to False.
RUN_OVER = condition("Running", "MPIJobRunning", "False")
SUCCEEDED = condition("Succeeded", "MPIJobSucceeded")


def failed(reason: str) -> dict[str, str]:
    return condition("Failed", reason)


WAIT, DONE, RETRY, BAD_INPUT = Outcome.RUNNING, Outcome.SUCCEEDED, Outcome.RETRY, Outcome.BAD_INPUT
# The launcher Job's reasons, with the last failed launcher pod's reason appended after "/".
BACKOFF, BACKOFF_EVICTED = "BackoffLimitExceeded/", "BackoffLimitExceeded/Evicted"
EVICTED = "MPIJobEvicted"

# (conditions, launcher exit code, outcome, reason)
TABLE: list[tuple[list[dict[str, str]], int | None, Outcome, str]] = [
    ([], None, WAIT, "Pending"),
    ([CREATED], None, WAIT, "MPIJobCreated"),
    ([CREATED, RUNNING], None, WAIT, "MPIJobRunning"),
    ([CREATED, *SUSPENDED], None, WAIT, "MPIJobSuspended"),
    ([CREATED, RESUMED], None, WAIT, "MPIJobCreated"),
    ([CREATED, RESUMED, RUNNING], None, WAIT, "MPIJobRunning"),
    # Declared by the API, never set by the v2beta1 controller: a launcher restarting in place.
    ([CREATED, condition("Restarting", "MPIJobRestarting")], None, WAIT, "MPIJobRestarting"),
    ([CREATED, RUN_OVER, SUCCEEDED], 0, DONE, "MPIJobSucceeded"),
    ([CREATED, RESUMED, RUN_OVER, SUCCEEDED], 0, DONE, "MPIJobSucceeded"),
    # A worker evicted (preempted) after the launcher finished does not undo the work.
    ([CREATED, condition("Failed", EVICTED, "False"), SUCCEEDED], 0, DONE, "MPIJobSucceeded"),
    ([CREATED, RUNNING, failed(EVICTED)], None, RETRY, EVICTED),
    ([CREATED, RUN_OVER, failed(EVICTED)], 137, RETRY, EVICTED),
    ([CREATED, RUN_OVER, failed(BACKOFF)], 1, RETRY, BACKOFF),
    ([CREATED, RUN_OVER, failed(BACKOFF_EVICTED)], None, RETRY, BACKOFF_EVICTED),
    ([CREATED, RUN_OVER, failed("DeadlineExceeded")], None, RETRY, "DeadlineExceeded"),
    ([CREATED, RUN_OVER, failed("MPIJobFailed")], 2, RETRY, "MPIJobFailed"),
    # Any reason a newer controller or Job controller may add is a failure worth a retry.
    ([CREATED, RUN_OVER, failed("PodFailurePolicy")], None, RETRY, "PodFailurePolicy"),
    # The CLI's exit code for an unusable input decides, whatever the reason.
    ([CREATED, RUN_OVER, failed(BACKOFF)], 3, BAD_INPUT, BACKOFF),
    ([CREATED, RUN_OVER, failed("MPIJobFailed")], 3, BAD_INPUT, "MPIJobFailed"),
    ([CREATED, RUNNING, failed(EVICTED)], 3, BAD_INPUT, EVICTED),
]


@pytest.mark.parametrize(("conditions", "exit_code", "outcome", "reason"), TABLE)
def test_status_maps_to_outcome(
    conditions: list[dict[str, str]], exit_code: int | None, outcome: Outcome, reason: str
) -> None:
    state = mpijob_state({"conditions": conditions}, launcher_exit_code=exit_code)
    assert (state.outcome, state.reason) == (outcome, reason)


def test_the_deciding_condition_s_message_is_kept() -> None:
    evicted = {**failed(EVICTED), "message": "1/4 workers are evicted"}
    state = mpijob_state({"conditions": [CREATED, RUNNING, evicted]})
    assert state.message == "1/4 workers are evicted"


def test_a_status_not_yet_written_means_waiting() -> None:
    assert mpijob_state(None).outcome is Outcome.RUNNING
    assert mpijob_state({}).outcome is Outcome.RUNNING


def test_the_table_covers_every_reason_the_operator_emits() -> None:
    emitted = {
        "MPIJobCreated",
        "MPIJobRunning",
        "MPIJobSuspended",
        "MPIJobResumed",
        "MPIJobSucceeded",
        "MPIJobFailed",
        "MPIJobEvicted",
        "BackoffLimitExceeded/",
        "DeadlineExceeded",
    }
    covered = {c["reason"] for conditions, *_ in TABLE for c in conditions}
    assert emitted <= covered
    types = {c["type"] for conditions, *_ in TABLE for c in conditions}
    assert types == {"Created", "Running", "Restarting", "Suspended", "Succeeded", "Failed"}
    assert {row[2] for row in TABLE} == set(Outcome)
    assert BAD_INPUT_EXIT_CODE == 3


def pod(created: str, *statuses: dict[str, Any], main: str = "launcher") -> dict[str, Any]:
    return {
        "metadata": {"creationTimestamp": created},
        "spec": {"containers": [{"name": main}, {"name": "sidecar"}]},
        "status": {"containerStatuses": list(statuses)},
    }


def container(name: str = "launcher", **states: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, **states}


def exited(code: int) -> dict[str, Any]:
    return {"terminated": {"exitCode": code, "reason": "Error" if code else "Completed"}}


@pytest.mark.parametrize(
    ("pods", "code"),
    [
        ([], None),
        ([pod("2026-01-01T00:00:00Z", container(state={"running": {}}))], None),
        ([pod("2026-01-01T00:00:00Z", container(state=exited(3)))], 3),
        # Restarted in place (restartPolicy OnFailure): the finished run is the last state.
        (
            [
                pod(
                    "2026-01-01T00:00:00Z",
                    container(
                        state={"waiting": {"reason": "CrashLoopBackOff"}}, lastState=exited(3)
                    ),
                )
            ],
            3,
        ),
        # A Job that retried its launcher: the newest pod tells.
        (
            [
                pod("2026-01-01T00:05:00Z", container(state=exited(1))),
                pod("2026-01-01T00:00:00Z", container(state=exited(3))),
            ],
            1,
        ),
        # The launcher is the first container in the spec, wherever its status is listed.
        (
            [
                pod(
                    "2026-01-01T00:00:00Z",
                    container("sidecar", state=exited(0)),
                    container(state=exited(3)),
                )
            ],
            3,
        ),
        ([pod("2026-01-01T00:00:00Z", container("sidecar", state=exited(3)))], None),
    ],
)
def test_launcher_exit_code_comes_from_the_newest_launcher_pod(
    pods: list[dict[str, Any]], code: int | None
) -> None:
    assert launcher_exit_code(pods) == code
