"""What an MPIJob's status means for Airflow: keep waiting, succeeded, retry, or fail for good;
and what its pods and their events say: workers lost while it runs, why it does not start.

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
from datetime import datetime
from typing import Any, NamedTuple

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


# ---- While it runs: its workers; before it runs: why it does not start ----------------------


def has_started(status: Mapping[str, Any] | None) -> bool:
    """Whether the MPIJob has run: the controller sets Running once the launcher and every
    worker run, and leaves it True until the job ends or is suspended."""
    return any(
        c.get("type") == "Running" and c.get("status") == "True"
        for c in (status or {}).get("conditions") or []
    )


def startup_began(status: Mapping[str, Any] | None, created_at: float) -> float | None:
    """The UNIX time from which the MPIJob's start-up is timed: its creation (`created_at`), or
    its last resumption (Kueue admits a job by resuming it); None while it is suspended, as
    waiting in a queue is not failing to start."""
    for condition in (status or {}).get("conditions") or []:
        if condition.get("type") != "Suspended":
            continue
        if condition.get("status") == "True":
            return None
        if resumed := _unix_time(condition.get("lastTransitionTime")):
            return max(created_at, resumed)
    return created_at


def worker_names(mpijob: Mapping[str, Any]) -> list[str]:
    """The worker pods an MPIJob should have, as the MPI Operator names them."""
    worker = (mpijob.get("spec", {}).get("mpiReplicaSpecs") or {}).get("Worker") or {}
    name = mpijob["metadata"]["name"]
    return [f"{name}-worker-{index}" for index in range(int(worker.get("replicas") or 0))]


def lost_workers(expected: Sequence[str], pods: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The workers of `expected` that are not running and Ready among `pods`, each with how."""
    by_name = {pod["metadata"]["name"]: pod for pod in pods}
    lost = {}
    for name in expected:
        pod = by_name.get(name)
        if pod is None:
            lost[name] = "missing"
        elif (how := _unready(pod)) is not None:
            lost[name] = how
    return lost


class Problem(NamedTuple):
    """Why an object does not run: `<about>: <reason>: <message>`."""

    about: str  # `<kind> <name>`, lowercase kind: "pod score-x-worker-0"
    reason: str  # FailedScheduling, ErrImagePull, FailedCreate ...
    message: str

    def __str__(self) -> str:
        return f"{self.about}: {self.reason}: {self.message}"


def pod_problems(pod: Mapping[str, Any]) -> list[Problem]:
    """Why a pod does not run, as its status says: unschedulable, or a container waiting for a
    reason other than starting (ErrImagePull, ImagePullBackOff, CreateContainerConfigError)."""
    about = f"pod {pod['metadata']['name']}"
    status = pod.get("status") or {}
    problems = [
        Problem(about, str(c["reason"]), str(c.get("message", "")))
        for c in status.get("conditions") or []
        if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason")
    ]
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
            problems.append(Problem(about, str(waiting["reason"]), str(waiting.get("message", ""))))
    return problems


def event_problems(events: Sequence[Mapping[str, Any]]) -> list[Problem]:
    """The Warning events among `events` (core/v1), oldest first (FailedScheduling, FailedCreate
    for a quota exceeded, Failed for an image pull ...)."""
    warnings = sorted(
        (e for e in events if e.get("type") == "Warning"),
        key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""),
    )
    return [
        Problem(
            f"{str(about.get('kind', '')).lower()} {about.get('name', '')}",
            str(event.get("reason", "")),
            str(event.get("message", "")),
        )
        for event in warnings
        if (about := event.get("involvedObject") or {}) is not None
    ]


def _unready(pod: Mapping[str, Any]) -> str | None:
    """How a worker pod is not serving (None when it is): terminating, its phase, not Ready."""
    if pod["metadata"].get("deletionTimestamp"):
        return "terminating"
    status = pod.get("status") or {}
    if (phase := status.get("phase")) != "Running":
        return str(phase or "Pending")
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    if not ready or ready[0].get("status") != "True":
        return "not Ready"
    return None


def _unix_time(stamp: Any) -> float | None:
    """An RFC 3339 time as the API writes it (`2026-01-01T10:00:00Z`), as a UNIX time."""
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None
