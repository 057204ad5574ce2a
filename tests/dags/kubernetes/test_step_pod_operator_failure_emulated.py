"""A failed step pod says why: the reason its log ends with is the task's failure message and
its `failure` XCom (kmock's emulated API, as in test_step_pod_operator_emulated.py)."""

import json

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from tests.dags.kubernetes.conftest import NAMESPACE, EmulatedKubernetes
from tests.dags.kubernetes.test_step_pod_operator_emulated import (
    ACCOUNT_KEY,
    finish,
    resume,
    start,
    task_context,
)

REASON = "the plan of job j1 is unusable"
LOG = (
    "2026-01-01 10:00:00,000 videostyle.steps.publish INFO reading the plan\n"
    f"2026-01-01 10:00:00,001 videostyle ERROR publish failed: {REASON}\n"
)


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
