"""The MPIJob operator's whole life against an EMULATED Kubernetes API (kmock, real HTTP).

The operator and its trigger run unchanged, with the real `kubernetes` clients and the hooks;
the API server is kmock's in-memory emulator (see conftest.py), and the tests play the MPI
Operator and the triggerer (see mpijob_doubles.py). The trigger's own tests are in
test_mpijob_trigger.py, the hook's in test_hook.py.
"""

import logging
import re
from typing import Any, cast

import kmock
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from tests.videostyle_airflow.kubernetes.conftest import (
    MPIJOBS,
    NAMESPACE,
    PODS,
    SECRETS,
    EmulatedKubernetes,
)
from tests.videostyle_airflow.kubernetes.mpijob_doubles import (
    MPIJOBS_PATH,
    PODS_PATH,
    RUN_HASH,
    RUN_ID,
    SAS,
    SAS_B64,
    SCORE_MPIJOB,
    SECRET_ENV,
    SECRETS_PATH,
    TASK_ID,
    calls,
    conditions,
    defer,
    deletion,
    is_read_of,
    launcher_pod,
    mpijob_calls,
    name_of_try,
    run_in_triggerer,
    score_operator,
    stamped,
    task_context,
)
from tests.videostyle_airflow.operator_doubles import TaskInstance
from videostyle_airflow.kubernetes.hook import env_secret_name
from videostyle_airflow.kubernetes.mpijob_operator import ENV_SECRET_PLACEHOLDER, MPIJobOperator
from videostyle_airflow.kubernetes.mpijob_trigger import TAIL_LINES

LAUNCHER_LINES = [f"launcher line {i}" for i in range(25)]


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
    assert cast(TaskInstance, context["ti"]).xcoms == {"failure": reason}
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
    assert cast(TaskInstance, context["ti"]).xcoms == {}


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


def test_on_kill_copies_the_launcher_s_last_lines_and_deletes_the_mpijob__emulated_api(
    kubernetes_connection: EmulatedKubernetes, capsys: pytest.CaptureFixture[str]
) -> None:
    """EMULATED API: a task killed in its worker copies the launcher log's last lines into
    the task log, then deletes the MPIJob it created."""
    kube = kubernetes_connection
    operator = score_operator()
    trigger = defer(operator, task_context())
    pod = launcher_pod(kube, trigger.name, phase="Running")
    kube.server[f"get {PODS_PATH}/{pod}/log"] << "\n".join(LAUNCHER_LINES[-TAIL_LINES:]).encode()

    operator.on_kill()

    assert calls(kube)[-2:] == [
        ("GET", f"{PODS_PATH}/{pod}/log", {"container": "launcher", "tailLines": str(TAIL_LINES)}),
        deletion(trigger.name),
    ]
    assert kube.objects(MPIJOBS) == {}
    assert kube.objects(SECRETS) == {}
    assert "The launcher's last lines:\nlauncher line 5\n" in capsys.readouterr().out


def test_on_kill_deletes_the_mpijob_whether_or_not_the_launcher_s_log_can_be_read__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    operator = score_operator()
    trigger = defer(operator, task_context())
    kube.server[f"get {PODS_PATH}"] << 403  # no pods in the role, say

    operator.on_kill()

    assert calls(kube)[-1] == deletion(trigger.name)
    assert kube.objects(MPIJOBS) == {}


def test_a_failed_try_repeats_the_launcher_s_last_lines_after_copying_them__emulated_api(
    kubernetes_connection: EmulatedKubernetes, capsys: pytest.CaptureFixture[str]
) -> None:
    """EMULATED API: the launcher's log streams into the task log; when the MPIJob fails and
    the log names no reason, the failure repeats its last TAIL_LINES lines, in the task log
    and in its message: more than a condition's reason."""
    kube = kubernetes_connection
    trigger = defer(score_operator(), task_context())
    pod = launcher_pod(kube, trigger.name, phase="Running")
    running = conditions("MPIJobCreated", "MPIJobRunning")
    evicted = conditions("MPIJobCreated", "MPIJobRunning", failed="MPIJobEvicted")
    kube.report_statuses(trigger.name, [running, running, evicted])
    # The launcher's last lines come after the MPIJob failed: only a read at the end has them.
    reads = [0]

    def count_reads(request: kmock.Request) -> None:
        reads[0] += is_read_of(request, trigger.name)

    kube.server.before_serving.append(count_reads)
    kube.server[f"get {PODS_PATH}/{pod}/log"] << (
        lambda _: "\n".join(stamped(LAUNCHER_LINES[: 10 if reads[0] < 3 else None])).encode()
    )

    event = run_in_triggerer(trigger)
    assert event["tail"] == LAUNCHER_LINES[-TAIL_LINES:]
    with pytest.raises(AirflowException) as failure:
        score_operator().execute_complete(task_context(), event)

    tail = "\n".join(LAUNCHER_LINES[-TAIL_LINES:])
    assert str(failure.value).endswith(f"MPIJobEvicted\nThe launcher's last lines:\n{tail}")
    task_log = capsys.readouterr().out
    assert task_log.count("launcher line 0") == 1  # streamed, not repeated
    assert f"The launcher's last {TAIL_LINES} lines:\n{tail}" in task_log
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
