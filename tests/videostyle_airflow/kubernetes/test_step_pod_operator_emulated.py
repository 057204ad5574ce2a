"""A step pod's try against an EMULATED Kubernetes API (kmock over real HTTP, see conftest.py).

The provider's KubernetesPodOperator runs unchanged, deferrable, with the real `kubernetes`
client; the tests play the kubelet (writing the pod's status, serving its log) and the
triggerer (calling `trigger_reentry` with the event the provider's trigger sends). The SAS are
minted for real, offline, from a fake account key. Reattaching to an earlier try's pod (the
provider's `durable`, on by default) is off but where a test turns it on.
"""

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred
from kubernetes.client.exceptions import ApiException

from tests.videostyle_airflow.kubernetes.conftest import (
    NAMESPACE,
    PODS,
    SECRETS,
    EmulatedKubernetes,
)
from tests.videostyle_airflow.operator_doubles import TaskInstance
from videostyle_airflow.kubernetes.hook import TASK_RUN_LABEL, try_names
from videostyle_airflow.kubernetes.launcher import kubernetes_step_operator
from videostyle_airflow.kubernetes.step_pod_operator import StepPodOperator

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


def pushed(context: Context) -> dict[str, Any]:
    """The XComs the task pushed, as its TaskInstance double recorded them."""
    return cast(TaskInstance, context["ti"]).xcoms


def task_context(try_number: int = 1) -> Context:
    ti = TaskInstance(
        dag_id="videostyle_process",
        run_id="manual__2026-01-01T00:00:00+00:00",
        task_id="publish",
        map_index=-1,
        try_number=try_number,
        start_date=datetime.now(UTC),
    )
    return cast(Context, {"ti": ti, "run_id": ti.run_id, "dag": SimpleNamespace()})


def try_secret_name(context: Context) -> str:
    """The Secret of the try's env."""
    return try_names(context["ti"]).secret


def publish_operator(*, durable: bool = False) -> StepPodOperator:
    operator = kubernetes_step_operator(
        "publish",
        task_id="publish",
        args=["--job", "j1"],
        ranks=1,
        execution_timeout=timedelta(minutes=15),
        durable=durable,
    )
    assert isinstance(operator, StepPodOperator)
    return operator


def defer(context: Context, *, durable: bool = False) -> Any:
    """Run `execute` up to its deferral; return the trigger it deferred to."""
    with pytest.raises(TaskDeferred) as deferred:
        publish_operator(durable=durable).execute(context)
    return deferred.value.trigger


def start(kube: EmulatedKubernetes, context: Context, *, durable: bool = False) -> str:
    """Run `execute` up to its deferral; return the name of the pod it waits on."""
    name = str(defer(context, durable=durable).pod_name)
    assert name in kube.objects(PODS)
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


def resume(context: Context, pod: str, status: str, *, durable: bool = False) -> Any:
    """What the triggerer's event makes a fresh operator do."""
    event = {"status": status, "namespace": NAMESPACE, "name": pod, "message": f"pod {status}"}
    return publish_operator(durable=durable).trigger_reentry(context, event)


def owned_by(kube: EmulatedKubernetes, pod: str) -> list[dict[str, str]]:
    """The ownerReferences that make a Secret the pod's, by the pod's live uid."""
    uid = kube.objects(PODS)[pod]["metadata"]["uid"]
    return [{"apiVersion": "v1", "kind": "Pod", "name": pod, "uid": uid}]


def test_the_pod_reads_its_tries_sas_secret_and_the_result_reaches_xcom__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    context = task_context()
    pod = start(kube, context)

    secret_name = try_secret_name(context)
    secret = kube.objects(SECRETS)[secret_name]
    env = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert sorted(env) == [
        "VIDEOSTYLE_OUTPUTS_CONNECTION_STRING",
        "VIDEOSTYLE_OUTPUTS_URL",
        "VIDEOSTYLE_WORK_CONNECTION_STRING",
        "VIDEOSTYLE_WORK_URL",
    ]
    assert "SharedAccessSignature=" in env["VIDEOSTYLE_WORK_CONNECTION_STRING"]
    assert ACCOUNT_KEY not in json.dumps(secret)
    assert ACCOUNT_KEY not in json.dumps(env)
    container = kube.objects(PODS)[pod]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": secret_name}}]
    assert "sig=" not in json.dumps(kube.objects(PODS)[pod])

    log = f"publishing\n{json.dumps(RESULT)}\nINFO a late line on stderr\n"
    finish(kube, pod, exit_code=0, log=log)
    resume(context, pod, "success")

    assert pushed(context)["return_value"] == RESULT
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
    assert "return_value" not in pushed(context)


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
    assert pushed(context)["failure"] == REASON


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
    assert "failure" not in pushed(context)


# A try's Secret outlives no pod. A worker killed while its task is deferred never runs
# trigger_reentry nor on_kill, which delete it: the Secret is owned by the pod that reads it,
# so Kubernetes deletes it with the pod, and the next try deletes what earlier tries left.


def test_a_task_killed_while_deferred_loses_its_secret_with_its_pod__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    context = task_context()
    trigger = defer(context)
    owner = owned_by(kube, trigger.pod_name)
    secret = kube.objects(SECRETS)[try_secret_name(context)]

    # Marked failed (or cleared) while deferred: the triggerer runs the provider's trigger's
    # on_kill, which deletes the pod. No code of the operator runs, on any worker.
    asyncio.run(trigger.on_kill())

    assert kube.objects(PODS) == {}
    assert kube.objects(SECRETS) == {}  # collected with its owner,
    assert secret["metadata"].get("ownerReferences") == owner  # the pod, by its uid


def test_a_retry_deletes_what_a_try_whose_worker_died_while_deferred_left__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    other_run = {TASK_RUN_LABEL: "0" * 10}  # the same task of another run
    kube.put(SECRETS, {"metadata": {"name": "publish-other-run-env", "labels": other_run}})
    kube.put(SECRETS, {"metadata": {"name": "unrelated"}})
    first, second = task_context(try_number=1), task_context(try_number=2)
    first_pod = start(kube, first)
    # Try 1's worker dies while its task is deferred: its Secret and its pod stay behind.

    second_pod = start(kube, second)

    # Not reattaching (durable=False), try 2 runs a pod of its own; try 1's stays, running on.
    # Its Secret went all the same: deleted by try 2, not collected with that pod.
    assert set(kube.objects(PODS)) == {first_pod, second_pod}
    assert set(kube.objects(SECRETS)) == {
        try_secret_name(second),
        "publish-other-run-env",
        "unrelated",
    }
    second_secret = kube.objects(SECRETS)[try_secret_name(second)]
    assert second_secret["metadata"]["ownerReferences"] == owned_by(kube, second_pod)

    finish(kube, second_pod, exit_code=0, log=f"{json.dumps(RESULT)}\n")
    resume(second, second_pod, "success")

    assert set(kube.objects(SECRETS)) == {"publish-other-run-env", "unrelated"}


def test_a_retry_reattaching_to_the_running_pod_keeps_its_secret_and_drops_its_own__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    first, second = task_context(try_number=1), task_context(try_number=2)
    pod = start(kube, first, durable=True)
    # Try 1's worker dies while its task is deferred; the pod may still be pending: the Secret
    # it reads must stay.

    assert start(kube, second, durable=True) == pod  # reattached, as in production

    assert set(kube.objects(PODS)) == {pod}
    assert set(kube.objects(SECRETS)) == {try_secret_name(first)}
    first_secret = kube.objects(SECRETS)[try_secret_name(first)]
    assert first_secret["metadata"]["ownerReferences"] == owned_by(kube, pod)

    finish(kube, pod, exit_code=0, log=f"{json.dumps(RESULT)}\n")
    resume(second, pod, "success", durable=True)

    assert pushed(second)["return_value"] == RESULT
    assert kube.objects(PODS) == {}
    assert kube.objects(SECRETS) == {}


def test_a_try_that_cannot_settle_its_secrets_fails_leaving_neither_pod_nor_secret__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    # A Role without `list` on secrets (docs/deployment.md's before the sweep).
    kube.server[f"get /api/v1/namespaces/{NAMESPACE}/secrets"] << 403

    with pytest.raises(ApiException) as refused:
        publish_operator().execute(task_context())

    assert refused.value.status == 403
    assert kube.objects(PODS) == {}
    assert kube.objects(SECRETS) == {}
