"""The MPIJob trigger against an EMULATED Kubernetes API (kmock, real HTTP, see conftest.py).

The trigger runs as the triggerer runs it, rebuilt from its serialized form, with the real
`kubernetes_asyncio` client and the async hook, on an MPIJob the operator created; the tests
play the MPI Operator (see mpijob_doubles.py): how it waits, follows the launcher's log,
gives up at its deadline, and deletes the MPIJob when the deferred task is killed. Its
resilience (API outages, lost workers, start-up timeouts) is in test_mpijob_trigger_resilience.py.
"""

import asyncio
import re
from datetime import timedelta
from typing import Any

import aiohttp.web
import kmock
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException
from kubernetes_asyncio.client.exceptions import ApiException

from tests.videostyle_airflow.kubernetes.conftest import MPIJOBS, NAMESPACE, EmulatedKubernetes
from tests.videostyle_airflow.kubernetes.mpijob_doubles import (
    MPIJOBS_PATH,
    PODS_PATH,
    calls,
    conditions,
    defer,
    deletion,
    launcher_pod,
    rebuild,
    run_in_triggerer,
    score_operator,
    stamped,
    task_context,
)
from videostyle_airflow.kubernetes.mpijob_trigger import TAIL_LINES, ApiVerdict, api_verdict

LAUNCHER_LOG = stamped([f"launcher line {i}" for i in range(25)])


def play_a_run_that_ends_after_log_reads(
    kube: EmulatedKubernetes, mpijob: str, pod: str, reads: int, serve: Any
) -> list[kmock.Request]:
    """The MPIJob runs until the launcher's log has been asked for `reads` times, then succeeds;
    each ask is answered by `serve(n)`, n counting from 1. Returns the log requests."""
    asked: list[kmock.Request] = []

    def answer(request: kmock.Request) -> Any:
        asked.append(request)
        return serve(len(asked))

    def advance(request: kmock.Request) -> None:
        if request.action == kmock.action.FETCH and request.resource == MPIJOBS:
            done = len(asked) >= reads
            status = conditions("MPIJobCreated", "MPIJobSucceeded" if done else "MPIJobRunning")
            kube.server.objects[MPIJOBS, NAMESPACE, mpijob]["status"] = status

    kube.server[f"get {PODS_PATH}/{pod}/log"] << answer
    kube.server.before_serving.append(advance)
    return asked


RANKS_LOG = stamped(
    [
        "2026-01-01 10:00:00,000 videostyle.steps.score INFO rank 0/2: 3 units, 0 already done",
        "2026-01-01 10:00:01,000 videostyle.progress INFO "
        "progress rank 0/2: 0/50 frames (0%), 0.0 frames/s, ETA unknown",
        "2026-01-01 10:00:01,000 videostyle.progress INFO "
        "progress rank 1/2: 0/50 frames (0%), 0.0 frames/s, ETA unknown",
        "2026-01-01 10:00:06,000 videostyle.progress INFO "
        "progress rank 0/2: 20/50 frames (40%), 4.0 frames/s, ETA 8 s",
        "2026-01-01 10:00:06,000 videostyle.progress INFO "
        "progress rank 1/2: 18/50 frames (36%), 3.6 frames/s, ETA 9 s",
        "2026-01-01 10:00:14,000 videostyle.progress INFO "
        "progress rank 0/2: 50/50 frames (100%), 4.1 frames/s, ETA 0 s",
        "2026-01-01 10:00:15,000 videostyle.progress INFO "
        "progress rank 1/2: 50/50 frames (100%), 3.7 frames/s, ETA 0 s",
    ]
)


def test_the_launchers_log_streams_into_the_task_log_once_with_the_jobs_progress__emulated_api(
    kubernetes_connection: EmulatedKubernetes, capsys: pytest.CaptureFixture[str]
) -> None:
    kube = kubernetes_connection
    # Bounded: a trigger that stopped reading the log would wait forever here.
    trigger = defer(score_operator(wait_timeout=timedelta(seconds=30)), task_context())
    pod = launcher_pod(kube, trigger.name, phase="Running")
    # The log grows by two lines between reads, and each answer repeats all of it, as if the
    # API ignored sinceSeconds: lines already copied must not be copied again.
    asked = play_a_run_that_ends_after_log_reads(
        kube,
        trigger.name,
        pod,
        reads=3,
        serve=lambda n: "\n".join(RANKS_LOG[: 3 + 2 * n]).encode(),
    )

    event = run_in_triggerer(trigger)
    assert score_operator().execute_complete(task_context(), event) == trigger.name
    assert event["failure"] is None

    task_log = capsys.readouterr().out
    for line in RANKS_LOG:
        assert task_log.count(line.partition(" ")[2]) == 1, line
    jobs = re.findall(r"progress job: [^\[]*?(?= +\[)", task_log)
    assert jobs[0] == "progress job: 0/100 frames (0%), 0.0 frames/s, ETA unknown"
    assert jobs[-1] == "progress job: 100/100 frames (100%), 7.8 frames/s, ETA 0 s"
    assert len(asked) >= 3  # while it ran, and once more at its end
    params = [dict(request.params) for request in asked]
    assert all(p["container"] == "launcher" and p["timestamps"] == "True" for p in params)
    assert "sinceSeconds" not in params[0]
    assert all(int(p["sinceSeconds"]) >= 10 for p in params[1:])


def test_a_launcher_log_that_cannot_be_read_is_a_warning_not_a_failure__emulated_api(
    kubernetes_connection: EmulatedKubernetes, capsys: pytest.CaptureFixture[str]
) -> None:
    kube = kubernetes_connection
    # Bounded: a trigger that stopped reading the log would wait forever here.
    trigger = defer(score_operator(wait_timeout=timedelta(seconds=30)), task_context())
    pod = launcher_pod(kube, trigger.name, phase="Running")
    # kmock's Response, left out of its __all__.
    forbidden = kmock.Response(status=403)  # type: ignore[attr-defined]
    asked = play_a_run_that_ends_after_log_reads(  # no pods/log in the role, say
        kube, trigger.name, pod, reads=3, serve=lambda n: forbidden
    )

    event = run_in_triggerer(trigger)
    assert score_operator().execute_complete(task_context(), event) == trigger.name

    task_log = capsys.readouterr().out
    warning = (
        f"Cannot read the launcher's log of MPIJob {trigger.name}: "
        "the Kubernetes API answered 403 Forbidden"
    )
    assert task_log.count(warning) == 1  # said once, not at every read
    assert len(asked) >= 3


def test_a_job_never_admitted_times_out_for_a_retry_and_is_deleted__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    trigger = defer(score_operator(wait_timeout=timedelta(seconds=0.5)), task_context())
    # Kueue keeps it suspended: the operator keeps waiting, until its deadline.
    kube.report_statuses(trigger.name, [conditions("MPIJobCreated", "MPIJobSuspended")])

    event = run_in_triggerer(trigger)
    with pytest.raises(AirflowException, match="still MPIJobSuspended at the deadline"):
        score_operator().execute_complete(task_context(), event)
    assert kube.objects(MPIJOBS) == {}
    polls = [c for c in calls(kube) if c[0] == "GET" and c[1] == f"{MPIJOBS_PATH}/{trigger.name}"]
    assert len(polls) > 1


def test_killing_the_deferred_task_copies_the_launcher_s_last_lines_then_deletes__emulated_api(
    kubernetes_connection: EmulatedKubernetes, capsys: pytest.CaptureFixture[str]
) -> None:
    """EMULATED API: a user kills the deferred task; the triggerer's on_kill copies the
    launcher log's last lines into the task log, then deletes the MPIJob."""
    kube = kubernetes_connection
    trigger = defer(score_operator(), task_context())
    pod = launcher_pod(kube, trigger.name, phase="Running")
    kube.server[f"get {PODS_PATH}/{pod}/log"] << "\n".join(LAUNCHER_LOG[-TAIL_LINES:]).encode()

    asyncio.run(rebuild(trigger).on_kill())

    log_read = ("GET", f"{PODS_PATH}/{pod}/log", {"container": "launcher", "timestamps": "True"})
    # A trigger rebuilt to be killed read nothing before: the last lines only.
    assert calls(kube)[-2:] == [
        (*log_read[:2], {**log_read[2], "tailLines": str(TAIL_LINES)}),
        deletion(trigger.name),
    ]
    assert kube.objects(MPIJOBS) == {}
    assert "launcher line 24" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("exc", "verdict"),
    [
        *[(ApiException(status=code), ApiVerdict.TRANSIENT) for code in (500, 502, 503, 504)],
        # Load shed, request timeout; credentials expired or RBAC not yet reconciled: they may
        # mend, and if they do not the deadline ends the wait.
        *[(ApiException(status=code), ApiVerdict.TRANSIENT) for code in (429, 408, 401, 403)],
        *[(ApiException(status=code), ApiVerdict.GONE) for code in (404, 410)],
        # The request is wrong: asking again gets the same answer.
        *[(ApiException(status=code), ApiVerdict.REFUSED) for code in (400, 405, 406, 422)],
        (TimeoutError(), ApiVerdict.TRANSIENT),
        (ConnectionRefusedError(), ApiVerdict.TRANSIENT),
        (ConnectionResetError(), ApiVerdict.TRANSIENT),
        (aiohttp.ServerDisconnectedError(), ApiVerdict.TRANSIENT),
        # The connection's secrets backend failing to answer.
        (
            AirflowNotFoundException("The conn_id `kubernetes_default` isn't defined"),
            ApiVerdict.TRANSIENT,
        ),
    ],
    ids=repr,
)
def test_only_an_mpijob_gone_or_a_request_never_served_ends_the_wait(
    exc: Exception, verdict: ApiVerdict
) -> None:
    assert api_verdict(exc) is verdict
