"""What an MPIJob's status means for Airflow: keep waiting, succeeded, retry, or fail for good.

The Kubeflow MPI Operator (kubeflow.org/v2beta1) reports the conditions Created, Running,
Restarting, Suspended, Succeeded and Failed, with these reasons (its controller,
pkg/controller/mpi_job_controller.go and mpi_job_controller_status.go):

- Created: MPIJobCreated.
- Running: MPIJobRunning when True; MPIJobSuspended when False because the job is suspended.
- Suspended: MPIJobSuspended when True (e.g. Kueue has not admitted it yet); MPIJobResumed when
  False again.
- Succeeded: MPIJobSucceeded.
- Failed: MPIJobEvicted as soon as a worker is evicted (preempted), possibly while the launcher
  still runs (mpi-operator#647); otherwise the launcher Job's own reason, BackoffLimitExceeded
  (with "/" and the last failed launcher pod's reason appended, often empty) or DeadlineExceeded
  (activeDeadlineSeconds), or MPIJobFailed when the Job gives none.
- Restarting is declared by the API, but the v2beta1 controller never sets it.

"Launcher" here is the MPI Operator's term: the MPIJob's launcher pod, which runs mpirun (not
the local/kubernetes launchers of videostyle_airflow.launchers).
"""

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from videostyle.errors import BAD_INPUT_EXIT_CODE


class Outcome(enum.Enum):
    RUNNING = "running"  # not finished (created, queued, suspended, running): keep waiting
    SUCCEEDED = "succeeded"
    RETRY = "retry"  # failed (evicted, launcher failed, deadline passed): a new try may pass
    BAD_INPUT = "bad_input"  # the launcher exited with the CLI's bad-input code: do not retry


@dataclass(frozen=True)
class MPIJobState:
    outcome: Outcome
    reason: str  # of the condition that decided the outcome; "Pending" before any condition
    message: str


def mpijob_state(
    status: Mapping[str, Any] | None, *, launcher_exit_code: int | None = None
) -> MPIJobState:
    """Map an MPIJob's `.status` (and, once it failed, its launcher's exit code) to an outcome."""
    conditions = [c for c in (status or {}).get("conditions") or [] if c.get("status") == "True"]
    by_type = {c.get("type"): c for c in conditions}
    # A launcher that finished means all the work is done, whatever a worker did meanwhile
    # (the controller also turns Failed to False when it sets Succeeded).
    if succeeded := by_type.get("Succeeded"):
        return _state(Outcome.SUCCEEDED, succeeded)
    if failed := by_type.get("Failed"):
        bad_input = launcher_exit_code == BAD_INPUT_EXIT_CODE
        return _state(Outcome.BAD_INPUT if bad_input else Outcome.RETRY, failed)
    # The controller appends a condition each time one changes: the last one is the news.
    if conditions:
        return _state(Outcome.RUNNING, conditions[-1])
    return MPIJobState(Outcome.RUNNING, "Pending", "the MPI Operator has not reported yet")


def launcher_exit_code(pods: Sequence[Mapping[str, Any]]) -> int | None:
    """
    The exit code of the launcher's last finished run, from its pods as the API lists them.

    Only the newest pod counts (a launcher Job may have retried), and in it the first container,
    the one the MPI Operator runs mpirun in. A container restarted in place (restartPolicy
    OnFailure) keeps its last run under lastState.
    """
    if not pods:
        return None
    newest = max(pods, key=lambda pod: str(pod.get("metadata", {}).get("creationTimestamp", "")))
    launcher = newest.get("spec", {}).get("containers", [{}])[0].get("name")
    for container in newest.get("status", {}).get("containerStatuses") or []:
        if container.get("name") != launcher:
            continue
        terminated = (container.get("state") or {}).get("terminated") or (
            container.get("lastState") or {}
        ).get("terminated")
        return int(terminated["exitCode"]) if terminated else None
    return None


def _state(outcome: Outcome, condition: Mapping[str, Any]) -> MPIJobState:
    return MPIJobState(outcome, str(condition.get("reason", "")), str(condition.get("message", "")))
