"""A step pod's try against an EMULATED Kubernetes API (kmock over real HTTP, see conftest.py).

The provider's KubernetesPodOperator runs unchanged, deferrable, with the real `kubernetes`
client; the tests play the kubelet (writing the pod's status, serving its log) and the
triggerer (calling `trigger_reentry` with the event the provider's trigger sends). The SAS are
minted for real, offline, from a fake account key. Reattaching to an earlier try's pod is off
(durable=False): it lists pods with a set-based label selector the emulator does not know.
"""

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from tests.dags.kubernetes.conftest import NAMESPACE, PODS, SECRETS, EmulatedKubernetes
from tests.dags.operator_doubles import TaskInstance
from videostyle_airflow.kubernetes.launcher import kubernetes_step_operator
from videostyle_airflow.kubernetes.step_pod_operator import StepPodOperator, try_secret_name

ACCOUNT_KEY = "ZmFrZS1hY2NvdW50LWtleQ=="
RESULT = {"output": "clip/scream.mp4", "report": "clip/scream.json"}


@pytest.fixture(autouse=True)
def configured(monkeypatch: pytest.MonkeyPatch) -> None:
    account = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY};"
    monkeypatch.setenv(
        "AIRFLOW_CONN_VIDEOSTYLE_BLOB",
        json.dumps({"conn_type": "wasb", "extra": {"connection_string": account}}),
    )
    monkeypatch.setenv(
        "AIRFLOW_VAR_VIDEOSTYLE_KUBERNETES",
        json.dumps({"namespace": NAMESPACE, "poll_interval_seconds": 0.01}),
    )


def task_context() -> Context:
    ti = TaskInstance(
        dag_id="videostyle_process",
        run_id="manual__2026-01-01T00:00:00+00:00",
        task_id="publish",
        map_index=-1,
        try_number=1,
        start_date=datetime.now(UTC),
    )
    return cast(Context, {"ti": ti, "run_id": ti.run_id, "dag": SimpleNamespace()})


def publish_operator() -> StepPodOperator:
    operator = kubernetes_step_operator(
        "publish",
        task_id="publish",
        args=["--job", "j1"],
        ranks=1,
        returns_result_line=True,
        execution_timeout=timedelta(minutes=15),
        durable=False,
    )
    assert isinstance(operator, StepPodOperator)
    return operator


def start(kube: EmulatedKubernetes, context: Context) -> str:
    """Run `execute` up to its deferral; return the pod's name."""
    with pytest.raises(TaskDeferred):
        publish_operator().execute(context)
    (name,) = kube.objects(PODS)
    return name


def finish(kube: EmulatedKubernetes, pod: str, *, exit_code: int, log: str) -> None:
    """Play the kubelet: the base container ended with `exit_code`, having printed `log`."""
    obj = kube.objects(PODS)[pod]
    phase = "Succeeded" if exit_code == 0 else "Failed"
    terminated = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error"}
    obj["status"] = {
        "phase": phase,
        "containerStatuses": [
            {
                "name": "base",
                "ready": False,
                "restartCount": 0,
                "image": "videostyle-worker:0.1.0",
                "imageID": "",
                "state": {"terminated": terminated},
            }
        ],
    }
    kube.put(PODS, obj)
    kube.server[f"get /api/v1/namespaces/{NAMESPACE}/pods/{pod}/log"] << log.encode()


def resume(context: Context, pod: str, status: str) -> Any:
    """What the triggerer's event makes a fresh operator do."""
    event = {"status": status, "namespace": NAMESPACE, "name": pod, "message": f"pod {status}"}
    return publish_operator().trigger_reentry(context, event)


def test_the_pod_reads_its_tries_sas_secret_and_the_result_reaches_xcom__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    context = task_context()
    pod = start(kube, context)

    secret_name = try_secret_name(context)
    secret = kube.objects(SECRETS)[secret_name]
    env = secret["stringData"]
    assert sorted(env) == [
        "VIDEOSTYLE_OUTPUTS_CONNECTION_STRING",
        "VIDEOSTYLE_OUTPUTS_URL",
        "VIDEOSTYLE_WORK_CONNECTION_STRING",
        "VIDEOSTYLE_WORK_URL",
    ]
    assert "SharedAccessSignature=" in env["VIDEOSTYLE_WORK_CONNECTION_STRING"]
    assert ACCOUNT_KEY not in json.dumps(secret)
    container = kube.objects(PODS)[pod]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": secret_name}}]
    assert "sig=" not in json.dumps(kube.objects(PODS)[pod])

    log = f"publishing\n{json.dumps(RESULT)}\nINFO a late line on stderr\n"
    finish(kube, pod, exit_code=0, log=log)
    resume(context, pod, "success")

    assert context["ti"].xcoms["return_value"] == RESULT
    assert kube.objects(SECRETS) == {}
    assert kube.objects(PODS) == {}


def test_bad_input_fails_without_retry_and_the_secret_goes__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    context = task_context()
    pod = start(kube, context)

    finish(kube, pod, exit_code=3, log="publish failed: the plan is unusable\n")
    with pytest.raises(AirflowFailException, match="unusable"):
        resume(context, pod, "failed")

    assert kube.objects(SECRETS) == {}
    assert kube.objects(PODS) == {}
    assert "return_value" not in context["ti"].xcoms


def test_other_failures_stay_retryable__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    context = task_context()
    pod = start(kube, context)

    finish(kube, pod, exit_code=1, log="Traceback ...\n")
    with pytest.raises(AirflowException) as failure:
        resume(context, pod, "failed")

    assert not isinstance(failure.value, AirflowFailException)
    assert kube.objects(SECRETS) == {}
    assert kube.objects(PODS) == {}


# A failed step pod says why: the reason its log ends with is the task's failure message
# and its `failure` XCom.
REASON = "the plan of job j1 is unusable"
LOG = (
    "2026-01-01 10:00:00,000 videostyle.steps.publish INFO reading the plan\n"
    f"2026-01-01 10:00:00,001 videostyle ERROR publish failed: {REASON}\n"
)


@pytest.mark.parametrize(
    ("exit_code", "failure", "message"),
    [
        (3, AirflowFailException, f"publish failed: {REASON}"),
        (1, AirflowException, f"publish failed with exit code 1: {REASON}"),
    ],
)
def test_a_failed_step_pod_fails_with_the_reason_its_log_ends_with__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
    exit_code: int,
    failure: type[AirflowException],
    message: str,
) -> None:
    kube = kubernetes_connection
    context = task_context()
    pod = start(kube, context)

    finish(kube, pod, exit_code=exit_code, log=LOG)
    with pytest.raises(failure) as raised:
        resume(context, pod, "failed")

    assert type(raised.value) is failure
    assert str(raised.value) == message
    assert context["ti"].xcoms["failure"] == REASON


def test_a_failed_step_pod_without_a_reason_still_names_its_exit_code__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    context = task_context()
    pod = start(kube, context)

    finish(kube, pod, exit_code=3, log="Killed\n")
    with pytest.raises(
        AirflowFailException, match=r"publish: bad input or parameter \(exit code 3\)"
    ):
        resume(context, pod, "failed")
    assert "failure" not in context["ti"].xcoms
