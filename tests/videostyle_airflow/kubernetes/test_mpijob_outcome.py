"""Every condition and reason the MPI Operator (v2beta1) reports, mapped to Airflow's outcome;
and what an MPIJob's pods and their events say (lost workers, why it does not start)."""

from typing import Any

import pytest

from videostyle.errors import BAD_INPUT_EXIT_CODE
from videostyle_airflow.kubernetes.mpijob_outcome import (
    Outcome,
    event_problems,
    has_started,
    launcher_exit_code,
    lost_workers,
    mpijob_state,
    pod_problems,
    startup_began,
    worker_names,
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


# ---- While it runs: its workers; before it runs: why it does not start ----------------------


def ready_worker(name: str, **changes: Any) -> dict[str, Any]:
    worker: dict[str, Any] = {
        "metadata": {"name": name},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    for key, value in changes.items():
        worker[key] = {**worker[key], **value}
    return worker


WORKERS = ["job-worker-0", "job-worker-1"]


@pytest.mark.parametrize(
    ("pods", "lost"),
    [
        ([ready_worker("job-worker-0"), ready_worker("job-worker-1")], {}),
        # Its node deleted (a spot eviction): the pod is gone, then recreated Pending.
        ([ready_worker("job-worker-0")], {"job-worker-1": "missing"}),
        (
            [ready_worker("job-worker-0"), ready_worker("job-worker-1", status={"phase": None})],
            {"job-worker-1": "Pending"},
        ),
        (
            [
                ready_worker("job-worker-0"),
                ready_worker("job-worker-1", status={"phase": "Pending", "conditions": []}),
            ],
            {"job-worker-1": "Pending"},
        ),
        # Its node not ready (kubelet gone quiet): the pod runs on paper, not Ready.
        (
            [
                ready_worker("job-worker-0"),
                ready_worker(
                    "job-worker-1", status={"conditions": [{"type": "Ready", "status": "False"}]}
                ),
            ],
            {"job-worker-1": "not Ready"},
        ),
        (
            [ready_worker("job-worker-0", status={"conditions": []}), ready_worker("job-worker-1")],
            {"job-worker-0": "not Ready"},
        ),
        (
            [
                ready_worker(
                    "job-worker-0", metadata={"deletionTimestamp": "2026-01-01T10:00:00Z"}
                ),
                ready_worker("job-worker-1", status={"phase": "Failed"}),
            ],
            {"job-worker-0": "terminating", "job-worker-1": "Failed"},
        ),
        # A pod of another replica count (an older spec) is no worker of this one.
        ([ready_worker("job-worker-0"), ready_worker("job-worker-2")], {"job-worker-1": "missing"}),
    ],
)
def test_lost_workers_are_those_missing_or_not_running_and_ready(
    pods: list[dict[str, Any]], lost: dict[str, str]
) -> None:
    assert lost_workers(WORKERS, pods) == lost


def test_worker_names_are_the_mpi_operators() -> None:
    mpijob = {"metadata": {"name": "job"}, "spec": {"mpiReplicaSpecs": {"Worker": {"replicas": 2}}}}
    assert worker_names(mpijob) == WORKERS
    assert worker_names({"metadata": {"name": "job"}, "spec": {"mpiReplicaSpecs": {}}}) == []


CREATED_AT = 1_767_261_600.0  # 2026-01-01T10:00:00Z


@pytest.mark.parametrize(
    ("conditions", "began", "started"),
    [
        ([], CREATED_AT, False),
        ([CREATED], CREATED_AT, False),
        ([CREATED, RUNNING], CREATED_AT, True),
        # Queued by Kueue: not failing to start.
        ([CREATED, *SUSPENDED], None, False),
        # Admitted at 10:05: timed from then.
        (
            [CREATED, {**RESUMED, "lastTransitionTime": "2026-01-01T10:05:00Z"}],
            CREATED_AT + 300,
            False,
        ),
        # A resumption the API dated before the creation (clock skew): from the creation.
        (
            [CREATED, {**RESUMED, "lastTransitionTime": "2026-01-01T09:59:00Z"}],
            CREATED_AT,
            False,
        ),
        ([CREATED, RUN_OVER, SUCCEEDED], CREATED_AT, False),
    ],
)
def test_startup_is_timed_from_creation_or_admission_and_not_while_suspended(
    conditions: list[dict[str, str]], began: float | None, started: bool
) -> None:
    status = {"conditions": conditions}
    assert startup_began(status, CREATED_AT) == began
    assert has_started(status) is started


IMAGE = "myacr.azurecr.io/videostyle-worker:0.1.0"


def test_a_pod_that_does_not_start_says_why_in_its_status() -> None:
    pod = {
        "metadata": {"name": "job-worker-0"},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                },
            ],
            "containerStatuses": [
                {
                    "name": "worker",
                    "state": {
                        "waiting": {
                            "reason": "ImagePullBackOff",
                            "message": f'Back-off pulling image "{IMAGE}"',
                        }
                    },
                },
                {"name": "sidecar", "state": {"waiting": {"reason": "ContainerCreating"}}},
            ],
        },
    }
    assert [str(problem) for problem in pod_problems(pod)] == [
        "pod job-worker-0: Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
        "pod job-worker-0: ImagePullBackOff: Back-off pulling image "
        '"myacr.azurecr.io/videostyle-worker:0.1.0"',
    ]
    assert pod_problems({"metadata": {"name": "p"}, "status": {"phase": "Running"}}) == []


def test_warning_events_say_why_oldest_first() -> None:
    def event(kind: str, name: str, reason: str, at: str, type_: str = "Warning") -> dict[str, Any]:
        return {
            "involvedObject": {"kind": kind, "name": name},
            "reason": reason,
            "message": f"{reason} message",
            "type": type_,
            "lastTimestamp": at,
        }

    events = [
        event("Pod", "job-worker-0", "FailedScheduling", "2026-01-01T10:02:00Z"),
        event("Pod", "job-worker-0", "Scheduled", "2026-01-01T10:03:00Z", "Normal"),
        # A quota refusing the launcher's pod: its Job says so.
        event("Job", "job-launcher", "FailedCreate", "2026-01-01T10:01:00Z"),
    ]
    assert [str(problem) for problem in event_problems(events)] == [
        "job job-launcher: FailedCreate: FailedCreate message",
        "pod job-worker-0: FailedScheduling: FailedScheduling message",
    ]
