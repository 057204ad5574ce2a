"""The MPIJob operator's whole life against an EMULATED Kubernetes API (kmock, real HTTP).

The operator and its trigger run unchanged, with the real `kubernetes` clients and the
provider's hooks; the API server is kmock's in-memory emulator (see conftest.py), and the
tests play the MPI Operator by writing the MPIJob's status. The task runner is reduced to
the context the operator reads (`task_context`), and the triggerer to rebuilding the trigger
from its serialized form and running it to its first event (`run_in_triggerer`).
"""

import asyncio
import base64
import importlib
import json
import logging
import re
from datetime import timedelta
from typing import Any, cast

import kmock
import pytest
from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from tests.dags.kubernetes.conftest import (
    MPIJOBS,
    NAMESPACE,
    PODS,
    SECRETS,
    EmulatedKubernetes,
)
from tests.dags.operator_doubles import TaskInstance
from videostyle_airflow.kubernetes.mpijob_operator import (
    ENV_SECRET_PLACEHOLDER,
    MPIJobOperator,
    attempt_name,
    env_from_attempt_secret,
    env_secret_name,
    task_run_hash,
)
from videostyle_airflow.kubernetes.mpijob_trigger import MPIJobTrigger

DAG_ID, RUN_ID, TASK_ID = "videostyle_process", "manual__2026-01-01T00:00:00+00:00", "score"
RUN_HASH = task_run_hash(dag_id=DAG_ID, run_id=RUN_ID, task_id=TASK_ID, map_index=-1)
MPIJOBS_PATH = f"/apis/kubeflow.org/v2beta1/namespaces/{NAMESPACE}/mpijobs"
SECRETS_PATH = f"/api/v1/namespaces/{NAMESPACE}/secrets"
PODS_PATH = f"/api/v1/namespaces/{NAMESPACE}/pods"
SAS = "sv=2025-01-05&se=2026-01-01T01%3A00%3A00Z&sr=c&sp=rwl&sig=dGhpcyBpcyBhIHNpZ25hdHVyZQ%3D%3D"
SECRET_ENV = {"VIDEOSTYLE_SAS_TOKEN": SAS}
SAS_B64 = base64.b64encode(SAS.encode()).decode()
# What a spec builder hands the operator: the Launcher gets the attempt's Secret as env.
SCORE_MPIJOB: dict[str, Any] = {
    "metadata": {"labels": {"kueue.x-k8s.io/queue-name": "gpu"}},
    "spec": {
        "slotsPerWorker": 1,
        "launcherCreationPolicy": "WaitForWorkersReady",
        "runPolicy": {"cleanPodPolicy": "Running"},
        "mpiReplicaSpecs": {
            "Launcher": {
                "replicas": 1,
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "launcher",
                                "image": "videostyle-worker",
                                "envFrom": [env_from_attempt_secret()],
                            }
                        ]
                    }
                },
            },
            "Worker": {
                "replicas": 2,
                "template": {
                    "spec": {"containers": [{"name": "worker", "image": "videostyle-worker"}]}
                },
            },
        },
    },
}


def task_context(try_number: int = 1) -> Context:
    """The slice of the task runner's context the operator reads."""
    ti = TaskInstance(
        dag_id=DAG_ID,
        run_id=RUN_ID,
        task_id=TASK_ID,
        map_index=-1,
        try_number=try_number,
    )
    return cast(Context, {"ti": ti})


def name_of_try(try_number: int) -> str:
    return attempt_name(task_id=TASK_ID, run_hash=RUN_HASH, try_number=try_number)


def score_operator(**kwargs: Any) -> MPIJobOperator:
    options: dict[str, Any] = {"mpijob": SCORE_MPIJOB, "secret_env": SECRET_ENV} | kwargs
    return MPIJobOperator(task_id=TASK_ID, poll_interval=0.01, **options)


def defer(operator: MPIJobOperator, context: Context) -> MPIJobTrigger:
    """Run `execute` up to its deferral; return the trigger it defers to."""
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    assert deferred.value.method_name == "execute_complete"
    return cast(MPIJobTrigger, deferred.value.trigger)


def rebuild(trigger: MPIJobTrigger) -> MPIJobTrigger:
    """The trigger as the triggerer builds it: from its class path and JSON-stored kwargs."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    trigger_class = getattr(importlib.import_module(module), name)
    return cast(MPIJobTrigger, trigger_class(**json.loads(json.dumps(kwargs))))


def run_in_triggerer(trigger: MPIJobTrigger) -> dict[str, Any]:
    """Run the rebuilt trigger to its first event; return the event's payload, JSON-stored."""

    async def first_event() -> Any:
        return (await anext(aiter(rebuild(trigger).run()))).payload

    return cast(dict[str, Any], json.loads(json.dumps(asyncio.run(first_event()))))


def conditions(*reasons: str, failed: str | None = None) -> dict[str, Any]:
    """An MPIJob status with True conditions of these reasons (type: the reason's word)."""
    types = {
        "MPIJobCreated": "Created",
        "MPIJobRunning": "Running",
        "MPIJobSuspended": "Suspended",
        "MPIJobSucceeded": "Succeeded",
    }
    listed = [{"type": types[r], "status": "True", "reason": r, "message": r} for r in reasons]
    if failed:
        listed.append({"type": "Failed", "status": "True", "reason": failed, "message": failed})
    return {"conditions": listed}


def calls(kube: EmulatedKubernetes, start: int = 0) -> list[tuple[str, str, dict[str, str]]]:
    """The requests the emulator received: method, path and query."""
    return [(r.method.value, r.url.path, dict(r.params)) for r in kube.requests()[start:]]


def mpijob_calls(kube: EmulatedKubernetes) -> list[tuple[str, str, dict[str, str]]]:
    """The requests about MPIJobs and Secrets: not the pod reads that follow the launcher's log,
    which run beside the polls."""
    return [call for call in calls(kube) if not call[1].startswith(PODS_PATH)]


def deletion(name: str) -> tuple[str, str, dict[str, str]]:
    return ("DELETE", f"{MPIJOBS_PATH}/{name}", {"propagationPolicy": "Foreground"})


def test_mpijob_is_created_waited_on_deferred_succeeds_and_is_deleted__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kube = kubernetes_connection
    caplog.set_level(logging.DEBUG)
    trigger = defer(score_operator(), task_context())
    name = trigger.name
    assert name == name_of_try(1)

    mpijob = kube.objects(MPIJOBS)[name]
    assert mpijob["metadata"]["labels"] == {
        "kueue.x-k8s.io/queue-name": "gpu",
        "videostyle/task-run": RUN_HASH,
        "videostyle/try-number": "1",
    }
    assert mpijob["metadata"]["annotations"]["videostyle/run-id"] == RUN_ID
    assert (
        mpijob["spec"]["mpiReplicaSpecs"]["Worker"]
        == SCORE_MPIJOB["spec"]["mpiReplicaSpecs"]["Worker"]
    )
    launcher = mpijob["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]
    assert launcher["envFrom"] == [{"secretRef": {"name": env_secret_name(name)}}]
    secret = kube.objects(SECRETS)[env_secret_name(name)]
    assert secret["data"] == {"VIDEOSTYLE_SAS_TOKEN": SAS_B64}
    assert secret["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "kubeflow.org/v2beta1",
            "kind": "MPIJob",
            "name": name,
            "uid": mpijob["metadata"]["uid"],
        }
    ]

    kube.report_statuses(
        name,
        [
            conditions("MPIJobCreated"),
            conditions("MPIJobCreated", "MPIJobRunning"),
            conditions("MPIJobCreated", "MPIJobSucceeded"),
        ],
    )
    event = run_in_triggerer(trigger)
    # Resumed tasks run on a fresh operator, as after a deferral.
    assert score_operator().execute_complete(task_context(), event) == name

    assert kube.objects(MPIJOBS) == {}
    assert kube.objects(SECRETS) == {}  # collected with its owner
    assert mpijob_calls(kube) == [
        ("GET", MPIJOBS_PATH, {"labelSelector": f"videostyle/task-run={RUN_HASH}"}),
        ("POST", MPIJOBS_PATH, {}),
        ("POST", SECRETS_PATH, {}),
        *[("GET", f"{MPIJOBS_PATH}/{name}", {})] * 3,
        deletion(name),
    ]
    # Airflow's own loggers write to stdout; the clients' go through logging, at DEBUG here.
    airflow_logs = capsys.readouterr().out
    state_changes = re.findall(rf"MPIJob {NAMESPACE}/{name}: (\w+) \(", airflow_logs)
    assert state_changes == ["MPIJobCreated", "MPIJobRunning", "MPIJobSucceeded"]
    for logs in (airflow_logs, caplog.text):
        assert SAS not in logs
        assert SAS_B64 not in logs


def test_an_evicted_worker_fails_the_try_for_a_retry_and_the_mpijob_is_deleted__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    trigger = defer(score_operator(), task_context())
    status = conditions("MPIJobCreated", "MPIJobRunning", failed="MPIJobEvicted")
    kube.report_statuses(trigger.name, [status])

    event = run_in_triggerer(trigger)
    assert event["launcher_exit_code"] is None  # the launcher pod is still running, or gone
    with pytest.raises(AirflowException, match="MPIJobEvicted") as failure:
        score_operator().execute_complete(task_context(), event)
    assert not isinstance(failure.value, AirflowFailException)

    assert kube.objects(MPIJOBS) == {}
    assert kube.objects(SECRETS) == {}
    launcher_pods = {
        "labelSelector": f"training.kubeflow.org/job-name={trigger.name},"
        "training.kubeflow.org/job-role=launcher"
    }
    assert mpijob_calls(kube)[-2:] == [
        ("GET", f"{MPIJOBS_PATH}/{trigger.name}", {}),
        deletion(trigger.name),
    ]
    # Then its launcher pods were listed for the exit code (and for the log's last lines).
    after_last_poll = calls(kube)[calls(kube).index(mpijob_calls(kube)[-2]) + 1 : -1]
    assert after_last_poll[0] == ("GET", PODS_PATH, launcher_pods)


def test_a_retry_deletes_the_earlier_try_s_leftover_and_runs_under_a_fresh_name__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    # Try 1's worker died while its MPIJob ran: nobody deleted it.
    first = defer(score_operator(), task_context(try_number=1))
    other_run = {"metadata": {"name": "score-other", "labels": {"videostyle/task-run": "0" * 10}}}
    kube.put(MPIJOBS, other_run)
    seen = len(kube.requests())

    second = defer(score_operator(), task_context(try_number=2))

    assert (first.name, second.name) == (name_of_try(1), name_of_try(2))
    assert calls(kube, seen) == [
        ("GET", MPIJOBS_PATH, {"labelSelector": f"videostyle/task-run={RUN_HASH}"}),
        deletion(first.name),
        ("POST", MPIJOBS_PATH, {}),
        ("POST", SECRETS_PATH, {}),
    ]
    assert kube.requests()[-2].data["metadata"]["name"] == second.name
    assert set(kube.objects(MPIJOBS)) == {"score-other", second.name}
    assert set(kube.objects(SECRETS)) == {env_secret_name(second.name)}


def launcher_pod(kube: EmulatedKubernetes, mpijob: str, **status: Any) -> str:
    """Play the MPI Operator: the launcher pod of `mpijob`, with this status; its name."""
    name = f"{mpijob}-launcher-x7k2p"
    kube.put(
        PODS,
        {
            "metadata": {
                "name": name,
                "labels": {
                    "training.kubeflow.org/job-name": mpijob,
                    "training.kubeflow.org/job-role": "launcher",
                },
                # Really owned by the launcher Job, which the MPIJob owns.
                "ownerReferences": [
                    {
                        "apiVersion": "kubeflow.org/v2beta1",
                        "kind": "MPIJob",
                        "name": mpijob,
                        "uid": kube.objects(MPIJOBS)[mpijob]["metadata"]["uid"],
                    }
                ],
            },
            "spec": {"containers": [{"name": "launcher", "image": "videostyle-worker"}]},
            "status": status,
        },
    )
    return name


def stamped(lines: list[str]) -> list[str]:
    """Lines as the API serves a log with timestamps=true (kubelet format, a ms apart)."""
    return [f"2026-01-01T10:00:00.{i:03d}000000Z {line}" for i, line in enumerate(lines)]


def test_launcher_exiting_with_bad_input_code_fails_without_retry_saying_why__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    trigger = defer(score_operator(), task_context())
    reason = "the plan of job j1 is unusable"
    pod = launcher_pod(
        kube,
        trigger.name,
        phase="Failed",
        containerStatuses=[{"name": "launcher", "state": {"terminated": {"exitCode": 3}}}],
    )
    log = stamped(
        [
            "2026-01-01 10:00:00,000 videostyle ERROR score failed: " + reason,
            "2026-01-01 10:00:00,000 videostyle ERROR score failed: " + reason,  # the other rank
            "application called MPI_Abort(MPI_COMM_WORLD, 3) - process 0",
        ]
    )
    kube.server[f"get {PODS_PATH}/{pod}/log"] << "\n".join(log).encode()
    status = conditions("MPIJobCreated", failed="BackoffLimitExceeded/")
    kube.report_statuses(trigger.name, [status])

    event = run_in_triggerer(trigger)
    assert (event["launcher_exit_code"], event["failure"]) == (3, reason)
    context = task_context()
    with pytest.raises(AirflowFailException) as failure:
        score_operator().execute_complete(context, event)
    assert str(failure.value) == f"MPIJob {NAMESPACE}/{trigger.name} failed: {reason}"
    assert context["ti"].xcoms == {"failure": reason}
    assert kube.objects(MPIJOBS) == {}
    assert kube.objects(PODS) == {}


def test_without_a_reason_in_its_log_the_bad_input_code_still_fails_without_retry__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    trigger = defer(score_operator(), task_context())
    pod = launcher_pod(
        kube,
        trigger.name,
        phase="Failed",
        containerStatuses=[{"name": "launcher", "state": {"terminated": {"exitCode": 3}}}],
    )
    kube.server[f"get {PODS_PATH}/{pod}/log"] << b""
    kube.report_statuses(trigger.name, [conditions("MPIJobCreated", failed="BackoffLimitExceeded")])

    event = run_in_triggerer(trigger)
    context = task_context()
    with pytest.raises(
        AirflowFailException, match=r"bad input or parameter \(launcher exit code 3"
    ):
        score_operator().execute_complete(context, event)
    assert context["ti"].xcoms == {}


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
    asked = play_a_run_that_ends_after_log_reads(  # no pods/log in the role, say
        kube, trigger.name, pod, reads=3, serve=lambda n: kmock.Response(status=403)
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


def test_without_deferring_the_worker_waits_with_the_same_trigger__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    name = name_of_try(1)
    kube.report_statuses(
        name, [conditions("MPIJobCreated", "MPIJobRunning"), conditions("MPIJobSucceeded")]
    )

    assert score_operator(deferrable=False).execute(task_context()) == name

    assert kube.objects(MPIJOBS) == {}
    assert mpijob_calls(kube)[-3:] == [
        *[("GET", f"{MPIJOBS_PATH}/{name}", {})] * 2,
        deletion(name),
    ]


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


def test_an_mpijob_deleted_behind_the_operator_s_back_is_a_retryable_failure__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    trigger = defer(score_operator(), task_context())
    kube.delete(MPIJOBS, trigger.name)

    event = run_in_triggerer(trigger)
    with pytest.raises(AirflowException, match="answered 404") as failure:
        score_operator().execute_complete(task_context(), event)
    assert not isinstance(failure.value, AirflowFailException)
    assert calls(kube)[-1] == deletion(trigger.name)  # answered 404: nothing left to delete


def test_on_kill_deletes_the_mpijob_it_created__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    operator = score_operator()
    trigger = defer(operator, task_context())

    operator.on_kill()

    assert calls(kube)[-1] == deletion(trigger.name)
    assert kube.objects(MPIJOBS) == {}
    assert kube.objects(SECRETS) == {}


def test_killing_the_deferred_task_deletes_the_mpijob_from_the_triggerer__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    trigger = defer(score_operator(), task_context())

    asyncio.run(rebuild(trigger).on_kill())

    assert calls(kube)[-1] == deletion(trigger.name)
    assert kube.objects(MPIJOBS) == {}


@pytest.mark.parametrize(
    ("mpijob", "secret_env"),
    [({"spec": {}}, SECRET_ENV), (SCORE_MPIJOB, None)],
    ids=["secret-unreferenced", "reference-without-secret"],
)
def test_a_secret_and_its_reference_come_together_or_nothing_is_created__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
    mpijob: dict[str, Any],
    secret_env: dict[str, str] | None,
) -> None:
    operator = score_operator(mpijob=mpijob, secret_env=secret_env)
    with pytest.raises(AirflowFailException, match=ENV_SECRET_PLACEHOLDER):
        operator.execute(task_context())
    assert kubernetes_connection.requests() == []


def test_an_mpijob_body_naming_itself_is_refused() -> None:
    with pytest.raises(ValueError, match=r"metadata\.name"):
        MPIJobOperator(task_id=TASK_ID, mpijob={"metadata": {"name": "fixed"}, "spec": {}})
    with pytest.raises(ValueError, match="v2beta1"):
        MPIJobOperator(task_id=TASK_ID, mpijob={"apiVersion": "kubeflow.org/v1", "spec": {}})


# The MPI Operator names a Service after the MPIJob (an RFC 1035 label) and its workers'
# hostnames `<name>-worker-<index>` (RFC 1123 labels, at most 63 characters).
DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


@pytest.mark.parametrize("task_id", ["score", "Score_Video.step-2", "9lives", "x" * 250, "__"])
def test_attempt_names_are_dns_labels_with_room_for_worker_hostnames(task_id: str) -> None:
    name = attempt_name(task_id=task_id, run_hash="0123456789", try_number=12)
    assert DNS_1035_LABEL.fullmatch(name)
    assert name.endswith("-0123456789-t12")
    assert len(f"{name}-worker-9999999") <= 63


def test_every_task_run_and_every_try_gets_its_own_name() -> None:
    hashes = {
        task_run_hash(dag_id=DAG_ID, run_id=run_id, task_id=task_id, map_index=map_index)
        for run_id in ("run-a", "run-b")
        for task_id in ("score", "score2")
        for map_index in (-1, 0)
    }
    assert len(hashes) == 8
    assert all(re.fullmatch(r"[0-9a-f]{10}", run_hash) for run_hash in hashes)
    assert len({name_of_try(try_number) for try_number in (1, 2, 3)}) == 3
