"""What a try survives and what ends it early, against an EMULATED Kubernetes API (kmock, real
HTTP, see conftest.py): the API failing for a while mid-run, a worker lost to a spot
eviction, an MPIJob that does not start.

The operator defers and its trigger runs as the triggerer runs it (see mpijob_doubles.py); the
tests play the MPI Operator and the API server's trouble, in step with the trigger's requests
(each poll reads the MPIJob), never with sleeps. Times are scaled down: polls every 10 ms,
limits of a second or two, no backoff between the client's own retries.
"""

import time
from datetime import timedelta
from typing import Any

import kmock
import pytest
import tenacity
from airflow.providers.cncf.kubernetes import kubernetes_helper_functions
from airflow.providers.cncf.kubernetes.kubernetes_helper_functions import API_RETRIES
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from tests.videostyle_airflow.kubernetes.conftest import (
    EVENTS,
    MPIJOBS,
    NAMESPACE,
    PODS,
    EmulatedKubernetes,
)
from tests.videostyle_airflow.kubernetes.mpijob_doubles import (
    INSUFFICIENT_GPU,
    PODS_PATH,
    Outage,
    calls,
    conditions,
    defer,
    deletion,
    is_read_of,
    launcher_pod,
    put_workers,
    run_in_triggerer,
    score_operator,
    stamped,
    task_context,
    worker_name,
    worker_pod,
)
from videostyle_airflow.kubernetes import mpijob_trigger

RUNNING = conditions("MPIJobCreated", "MPIJobRunning")
SUCCEEDED = conditions("MPIJobCreated", "MPIJobSucceeded")
LAUNCHER_LOG = stamped([f"launcher line {i}" for i in range(25)])


@pytest.fixture(autouse=True)
def no_client_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider's client retries (generic_api_retry) without their seconds of backoff; as
    many of them."""
    monkeypatch.setattr(kubernetes_helper_functions, "_default_wait", tenacity.wait_none())


def deletes(kube: EmulatedKubernetes) -> list[tuple[str, str, dict[str, str]]]:
    return [call for call in calls(kube) if call[0] == "DELETE"]


def play(kube: EmulatedKubernetes, mpijob: str, status_at_read: Any) -> list[int]:
    """Play the MPI Operator: the n-th read of MPIJob `mpijob` (from 1) first sets its status
    to `status_at_read(n)`; returns the count of reads, growing."""
    reads = [0]

    def advance(request: kmock.Request) -> None:
        if is_read_of(request, mpijob):
            reads[0] += 1
            status = status_at_read(reads[0])
            kube.server.objects[MPIJOBS, NAMESPACE, mpijob]["status"] = status

    kube.server.before_serving.append(advance)
    return reads


# ---- The API in trouble ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "failed_reads", "problem"),
    [
        # Each poll exhausts the client's own retries (API_RETRIES): three polls in a row fail.
        (500, 3 * API_RETRIES, "the Kubernetes API answered 500 Internal Server Error"),
        (429, 3 * API_RETRIES, "the Kubernetes API answered 429 Too Many Requests"),
        # Credentials expired and not yet renewed: not retried by the client at all.
        (401, 3 * API_RETRIES, "the Kubernetes API answered 401 Unauthorized"),
        # No answer: each poll gives up after REQUEST_TIMEOUT_S (scaled down).
        (None, 4, "no answer within 0.5 s"),
    ],
    ids=["500", "429", "401", "no-answer"],
)
def test_an_api_failing_for_many_polls_mid_run_neither_ends_nor_deletes_the_run__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    status: int | None,
    failed_reads: int,
    problem: str,
) -> None:
    """EMULATED API: the MPIJob runs; the API fails every request over several polls, each
    longer than the client's retries; then it answers again and the job succeeds: so does the
    try, and the MPIJob is deleted only then, by the operator."""
    if status is None:
        monkeypatch.setattr(mpijob_trigger, "REQUEST_TIMEOUT_S", 0.5)
    kube = kubernetes_connection
    trigger = defer(
        score_operator(wait_timeout=timedelta(seconds=60), worker_lost_seconds=1),
        task_context(),
    )
    put_workers(kube, trigger.name)
    outage = Outage(trigger.name, after=3, reads=failed_reads, status=status)
    kube.server.interrupts.append(outage)
    play(kube, trigger.name, lambda n: SUCCEEDED if outage.over else RUNNING)

    event = run_in_triggerer(trigger)

    assert outage.over
    assert outage.failed == failed_reads
    assert deletes(kube) == []  # the trigger deleted nothing, whatever the API said
    assert "error" not in event
    assert score_operator().execute_complete(task_context(), event) == trigger.name
    assert deletes(kube) == [deletion(trigger.name)]
    task_log = capsys.readouterr().out
    subject = f"MPIJob {NAMESPACE}/{trigger.name}"
    assert task_log.count(f"Cannot read {subject} (failing for") == 1  # said once
    assert f"waiting on): {problem}" in task_log
    assert task_log.count(f"Read {subject} again, after") == 1


def test_an_api_failing_past_the_deadline_ends_the_wait_at_the_deadline_saying_so__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    """EMULATED API: an outage that outlasts the wait ends it at the deadline, not before, and
    the failure says how long the reads have failed."""
    kube = kubernetes_connection
    trigger = defer(score_operator(wait_timeout=timedelta(seconds=3)), task_context())
    outage = Outage(trigger.name, after=1, reads=10**6, status=503)
    kube.server.interrupts.append(outage)
    kube.report_statuses(trigger.name, [RUNNING])

    event = run_in_triggerer(trigger)

    assert not outage.over
    assert outage.failed >= API_RETRIES  # a poll, its client retries and all, failed
    outage.over = True  # back for the operator's delete
    with pytest.raises(AirflowException, match=r"still MPIJobRunning at the deadline; reads of"):
        score_operator().execute_complete(task_context(), event)
    assert deletes(kube) == [deletion(trigger.name)]


def test_a_request_the_api_can_never_serve_ends_the_wait__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    """EMULATED API: a 400 is not an outage: asking again gets the same answer."""
    kube = kubernetes_connection
    trigger = defer(score_operator(wait_timeout=timedelta(seconds=30)), task_context())
    outage = Outage(trigger.name, after=1, reads=10**6, status=400)
    kube.server.interrupts.append(outage)
    kube.report_statuses(trigger.name, [RUNNING])

    event = run_in_triggerer(trigger)

    assert outage.failed == 1
    assert event["error"] == "cannot be waited on: the Kubernetes API answered 400 Bad Request"


# ---- A worker lost while the launcher runs --------------------------------------------------


class SpotEviction:
    """Play a spot node taken away with worker 1 on it: at the `lost_at`-th read of the MPIJob
    the worker pod is gone; at the next, the MPI Operator has recreated it, Pending (no GPU
    node free); at the `back_at`-th, a node has come and it is Ready again."""

    def __init__(
        self, kube: EmulatedKubernetes, mpijob: str, *, lost_at: int, back_at: int | None
    ) -> None:
        self.reads = 0  # of the MPIJob
        self.lost_since: float | None = None  # monotonic
        key = (PODS, NAMESPACE, worker_name(mpijob, 1))
        pending = worker_pod(kube, mpijob, 1, ready=False)
        ready = worker_pod(kube, mpijob, 1, ready=True)

        def evict(request: kmock.Request) -> None:
            if not is_read_of(request, mpijob):
                return
            self.reads += 1
            if self.reads == lost_at:
                kube.server.objects[key].delete()
                self.lost_since = time.monotonic()
            elif self.reads == lost_at + 1:
                kube.server.objects[key] = pending
            elif self.reads == back_at:
                kube.server.objects[key] = ready

        kube.server.before_serving.append(evict)

    def lasted(self) -> float:
        """Seconds since the worker was lost; 0 before."""
        return 0.0 if self.lost_since is None else time.monotonic() - self.lost_since


def test_a_worker_lost_longer_than_worker_lost_seconds_ends_the_try_for_a_retry__emulated_api(
    kubernetes_connection: EmulatedKubernetes, capsys: pytest.CaptureFixture[str]
) -> None:
    """EMULATED API: a worker's pod vanishes mid-run (its spot node taken away) and its
    replacement stays Pending: after worker_lost_seconds the try ends for a retry, naming the
    worker and how long it was lost; the launcher log's last lines are copied, then the MPIJob
    is deleted."""
    kube = kubernetes_connection
    trigger = defer(
        score_operator(wait_timeout=timedelta(seconds=30), worker_lost_seconds=1),
        task_context(),
    )
    put_workers(kube, trigger.name)
    pod = launcher_pod(kube, trigger.name, phase="Running")
    kube.server[f"get {PODS_PATH}/{pod}/log"] << "\n".join(LAUNCHER_LOG).encode()
    kube.report_statuses(trigger.name, [RUNNING])  # the MPI Operator sees nothing wrong
    SpotEviction(kube, trigger.name, lost_at=3, back_at=None)

    event = run_in_triggerer(trigger)

    lost = worker_name(trigger.name, 1)
    assert event["retry"].startswith(f"lost worker {lost}: Pending for ")
    assert deletes(kube) == []
    with pytest.raises(AirflowException, match=rf"lost worker {lost}: Pending for \d+ s") as fail:
        score_operator().execute_complete(task_context(), event)
    assert not isinstance(fail.value, AirflowFailException)
    assert "longer than worker_lost_seconds (1 s)" in str(fail.value)
    assert kube.objects(MPIJOBS) == {}
    assert deletes(kube) == [deletion(trigger.name)]
    task_log = capsys.readouterr().out
    assert f"worker {lost} is missing; the try ends for a retry unless it is back within 1 s" in (
        task_log
    )
    assert f"MPIJob {NAMESPACE}/{trigger.name} lost worker {lost}: Pending for" in task_log
    assert "launcher line 24" in task_log
    log_reads = [i for i, c in enumerate(calls(kube)) if c[1] == f"{PODS_PATH}/{pod}/log"]
    assert log_reads[-1] < calls(kube).index(deletion(trigger.name))


def test_a_worker_back_within_worker_lost_seconds_lets_the_try_go_on__emulated_api(
    kubernetes_connection: EmulatedKubernetes, capsys: pytest.CaptureFixture[str]
) -> None:
    """EMULATED API: a worker's pod vanishes mid-run and its replacement is Ready within
    worker_lost_seconds: the try goes on, past worker_lost_seconds, and succeeds with the
    job."""
    kube = kubernetes_connection
    trigger = defer(
        # Room for the two polls the worker takes to come back on a loaded machine.
        score_operator(wait_timeout=timedelta(seconds=30), worker_lost_seconds=3),
        task_context(),
    )
    put_workers(kube, trigger.name)
    eviction = SpotEviction(kube, trigger.name, lost_at=3, back_at=5)
    # The job runs on well past worker_lost_seconds from the loss, then succeeds.
    play(kube, trigger.name, lambda n: SUCCEEDED if eviction.lasted() > 4 else RUNNING)

    event = run_in_triggerer(trigger)

    assert eviction.reads > 5
    assert "retry" not in event
    assert deletes(kube) == []
    assert score_operator().execute_complete(task_context(), event) == trigger.name
    task_log = capsys.readouterr().out
    lost = worker_name(trigger.name, 1)
    assert f"worker {lost} is missing" in task_log
    assert f"worker {lost} is back after" in task_log
    assert "lost worker" not in task_log


# ---- An MPIJob that does not start ----------------------------------------------------------


def event_about(pod: str, reason: str, message: str, type_: str = "Warning") -> dict[str, Any]:
    """A core/v1 Event about a pod, as the scheduler or the kubelet writes it."""
    return {
        "metadata": {"name": f"{pod}.{reason.lower()}"},
        "involvedObject": {"kind": "Pod", "name": pod, "namespace": NAMESPACE},
        "reason": reason,
        "message": message,
        "type": type_,
        "lastTimestamp": "2026-01-01T10:00:00Z",
    }


def test_an_mpijob_not_running_within_startup_timeout_retries_saying_why__emulated_api(
    kubernetes_connection: EmulatedKubernetes, capsys: pytest.CaptureFixture[str]
) -> None:
    """EMULATED API: the MPIJob stays Created (no GPU node for a worker) past
    startup_timeout_seconds: the try ends for a retry, with the scheduler's event in the task
    log and in the failure, and the MPIJob is deleted."""
    kube = kubernetes_connection
    trigger = defer(
        score_operator(wait_timeout=timedelta(seconds=30), startup_timeout_seconds=0.5),
        task_context(),
    )
    kube.report_statuses(trigger.name, [conditions("MPIJobCreated")])
    unscheduled = worker_name(trigger.name, 0)
    kube.put(PODS, worker_pod(kube, trigger.name, 0, ready=False))
    kube.put(EVENTS, event_about(unscheduled, "FailedScheduling", INSUFFICIENT_GPU))
    kube.put(
        EVENTS, event_about(unscheduled, "TriggeredScaleUp", "pod triggered scale-up", "Normal")
    )
    kube.put(EVENTS, event_about("someone-else", "FailedScheduling", "not ours"))

    event = run_in_triggerer(trigger)

    said = f"pod {unscheduled}: FailedScheduling: {INSUFFICIENT_GPU}"
    assert event["retry"].startswith("not running ")
    assert event["retry"].endswith(said)  # the pod's own Unschedulable, the same, said once
    with pytest.raises(AirflowException) as failure:
        score_operator().execute_complete(task_context(), event)
    assert not isinstance(failure.value, AirflowFailException)
    assert "longer than startup_timeout_seconds (0.5 s)" in str(failure.value)
    assert said in str(failure.value)
    assert "not ours" not in str(failure.value)
    assert "scale-up" not in str(failure.value)
    task_log = capsys.readouterr().out
    assert said in task_log
    assert kube.objects(MPIJOBS) == {}
    events_read = {c[2].get("fieldSelector") for c in calls(kube) if c[1].endswith("/events")}
    assert events_read == {
        f"involvedObject.name={name}"
        for name in (trigger.name, f"{trigger.name}-launcher", unscheduled)
    }


def test_a_suspended_mpijob_is_queued_not_failing_to_start__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    """EMULATED API: waiting in Kueue's queue does not count as starting: a suspended MPIJob
    waits until the deadline, whatever startup_timeout_seconds."""
    kube = kubernetes_connection
    trigger = defer(
        score_operator(wait_timeout=timedelta(seconds=1), startup_timeout_seconds=0.2),
        task_context(),
    )
    kube.report_statuses(trigger.name, [conditions("MPIJobCreated", "MPIJobSuspended")])

    event = run_in_triggerer(trigger)

    assert event["error"] == "still MPIJobSuspended at the deadline"


def test_the_startup_clock_survives_a_triggerer_restart__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    """EMULATED API: the trigger carries the MPIJob's creation as a UNIX time: a triggerer
    that takes it over 10 minutes after the creation (a restart) ends a job still not running
    at its first poll, not startup_timeout_seconds later."""
    kube = kubernetes_connection
    trigger = defer(score_operator(wait_timeout=timedelta(seconds=5)), task_context())
    _, kwargs = trigger.serialize()
    assert kwargs["startup_timeout_seconds"] == 600  # KubernetesConfig's default
    assert kwargs["worker_lost_seconds"] == 180
    assert abs(kwargs["created_at"] - time.time()) < 60
    kube.report_statuses(trigger.name, [conditions("MPIJobCreated")])
    trigger.created_at = kwargs["created_at"] - 601

    event = run_in_triggerer(trigger)

    assert event["retry"].startswith("not running 60")
    polls = [r for r in kube.requests() if is_read_of(r, trigger.name)]
    assert len(polls) == 1
