"""The launcher's Kubernetes hook against an EMULATED Kubernetes API (kmock, real HTTP).

Each call the operators and the trigger make through the hook, with the real `kubernetes`
(sync) and `kubernetes_asyncio` (async) clients, and the names a try gives what it creates.
"""

import asyncio
import logging
import re
from typing import Any

import kubernetes.client.exceptions
import kubernetes_asyncio.client.exceptions
import pytest

from tests.videostyle_airflow.kubernetes.conftest import (
    EVENTS,
    MPIJOBS,
    NAMESPACE,
    PODS,
    SECRETS,
    EmulatedKubernetes,
)
from tests.videostyle_airflow.kubernetes.mpijob_doubles import (
    DAG_ID,
    MPIJOBS_PATH,
    RUN_HASH,
    RUN_ID,
    SAS,
    SAS_B64,
    SECRET_ENV,
    SECRETS_PATH,
    TASK_ID,
    calls,
    deletion,
    name_of_try,
    task_context,
)
from videostyle_airflow.kubernetes.hook import (
    TASK_RUN_LABEL,
    VideostyleAsyncKubernetesHook,
    VideostyleKubernetesHook,
    attempt_name,
    env_secret_name,
    gone_is_fine,
    owner_reference,
    task_run_hash,
    try_names,
)

CONN_ID = "kubernetes_default"


def hook() -> VideostyleKubernetesHook:
    return VideostyleKubernetesHook(conn_id=CONN_ID)


def async_hook() -> VideostyleAsyncKubernetesHook:
    return VideostyleAsyncKubernetesHook(conn_id=CONN_ID)


def mpijob(name: str, run_hash: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v2beta1",
        "kind": "MPIJob",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {TASK_RUN_LABEL: run_hash}},
        "spec": {},
    }


# ---- Names ----------------------------------------------------------------------------------

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


def test_a_try_s_names_are_its_task_run_s_hash_its_mpijob_s_and_its_secret_s() -> None:
    names = try_names(task_context(try_number=2)["ti"])

    assert names.run_hash == RUN_HASH
    assert names.run_hash == task_run_hash(
        dag_id=DAG_ID, run_id=RUN_ID, task_id=TASK_ID, map_index=-1
    )
    assert names.mpijob == name_of_try(2)
    assert names.secret == env_secret_name(name_of_try(2)) == f"{name_of_try(2)}-env"


# ---- Secrets --------------------------------------------------------------------------------


def test_a_try_s_secret_holds_its_env_labelled_with_its_task_run__emulated_api(
    kubernetes_connection: EmulatedKubernetes, caplog: pytest.LogCaptureFixture
) -> None:
    kube = kubernetes_connection
    caplog.set_level(logging.DEBUG)

    hook().create_try_secret(
        "score-env", NAMESPACE, SECRET_ENV, run_hash=RUN_HASH, labels={"app": "videostyle"}
    )

    secret = kube.objects(SECRETS)["score-env"]
    assert secret["data"] == {"VIDEOSTYLE_SAS_TOKEN": SAS_B64}
    assert (secret["type"], secret["immutable"]) == ("Opaque", True)
    assert secret["metadata"]["labels"] == {"app": "videostyle", TASK_RUN_LABEL: RUN_HASH}
    assert "ownerReferences" not in secret["metadata"]
    assert calls(kube) == [("POST", SECRETS_PATH, {})]
    assert SAS not in caplog.text
    assert SAS_B64 not in caplog.text


def test_a_secret_created_with_an_owner_goes_with_it__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    created = hook().create_mpijob(mpijob("score-a", RUN_HASH), NAMESPACE)
    owner = owner_reference(
        api_version="kubeflow.org/v2beta1",
        kind="MPIJob",
        name="score-a",
        uid=created["metadata"]["uid"],
    )

    hook().create_try_secret("score-a-env", NAMESPACE, SECRET_ENV, run_hash=RUN_HASH, owner=owner)
    assert kube.objects(SECRETS)["score-a-env"]["metadata"]["ownerReferences"] == [owner]

    hook().delete_mpijob("score-a", NAMESPACE)
    assert kube.objects(MPIJOBS) == {}
    assert kube.objects(SECRETS) == {}  # collected with its owner


def test_a_task_run_s_secrets_are_listed_by_its_hash_and_can_change_owner__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    kube.put(SECRETS, {"metadata": {"name": "other-run", "labels": {TASK_RUN_LABEL: "0" * 10}}})
    kube.put(SECRETS, {"metadata": {"name": "unrelated"}})
    for name in ("score-t1-env", "score-t2-env"):
        hook().create_try_secret(name, NAMESPACE, SECRET_ENV, run_hash=RUN_HASH)

    assert sorted(hook().task_run_secrets(RUN_HASH, NAMESPACE)) == ["score-t1-env", "score-t2-env"]
    # Without a namespace: the connection's.
    assert sorted(hook().task_run_secrets(RUN_HASH, None)) == ["score-t1-env", "score-t2-env"]

    created = hook().create_mpijob(mpijob("score-t2", RUN_HASH), NAMESPACE)
    owner = owner_reference(
        api_version="kubeflow.org/v2beta1",
        kind="MPIJob",
        name="score-t2",
        uid=created["metadata"]["uid"],
    )
    hook().own_secret("score-t2-env", NAMESPACE, owner)
    assert kube.objects(SECRETS)["score-t2-env"]["metadata"]["ownerReferences"] == [owner]
    hook().delete_mpijob("score-t2", NAMESPACE)
    assert set(kube.objects(SECRETS)) == {"other-run", "unrelated", "score-t1-env"}


def test_deleting_a_secret_already_gone_is_fine_but_a_refusal_is_not__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    hook().create_try_secret("score-env", NAMESPACE, SECRET_ENV, run_hash=RUN_HASH)

    hook().delete_secret("score-env", NAMESPACE)
    hook().delete_secret("score-env", NAMESPACE)  # answered 404: nothing left to delete

    assert kube.objects(SECRETS) == {}
    assert [c[0] for c in calls(kube)] == ["POST", "DELETE", "DELETE"]
    # A Role without `delete` on secrets, say.
    hook().create_try_secret("score-t2-env", NAMESPACE, SECRET_ENV, run_hash=RUN_HASH)
    kube.server[f"delete {SECRETS_PATH}/score-t2-env"] << 403
    with pytest.raises(kubernetes.client.exceptions.ApiException) as refused:
        hook().delete_secret("score-t2-env", NAMESPACE)
    assert refused.value.status == 403


# ---- MPIJobs --------------------------------------------------------------------------------


def test_a_task_run_s_mpijobs_are_listed_by_its_hash_and_deleted_foreground__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    for name, run_hash in (("score-t1", RUN_HASH), ("score-t2", RUN_HASH), ("other", "0" * 10)):
        hook().create_mpijob(mpijob(name, run_hash), NAMESPACE)

    assert sorted(hook().task_run_mpijobs(RUN_HASH, NAMESPACE)) == ["score-t1", "score-t2"]
    assert calls(kube)[-1] == (
        "GET",
        MPIJOBS_PATH,
        {"labelSelector": f"{TASK_RUN_LABEL}={RUN_HASH}"},
    )

    hook().delete_mpijob("score-t1", NAMESPACE)
    hook().delete_mpijob("score-t1", NAMESPACE)  # answered 404: nothing left to delete
    assert calls(kube)[-2:] == [deletion("score-t1")] * 2
    assert set(kube.objects(MPIJOBS)) == {"score-t2", "other"}


def test_the_async_hook_reads_and_deletes_an_mpijob_gone_or_not__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    hook().create_mpijob(mpijob("score-t1", RUN_HASH), NAMESPACE)

    async def read_then_delete_twice() -> dict[str, Any]:
        read: dict[str, Any] = await async_hook().get_mpijob("score-t1", NAMESPACE)
        await async_hook().delete_mpijob("score-t1", NAMESPACE)
        await async_hook().delete_mpijob("score-t1", NAMESPACE)  # answered 404
        return read

    read = asyncio.run(read_then_delete_twice())

    assert read["metadata"]["name"] == "score-t1"
    assert kube.objects(MPIJOBS) == {}
    assert calls(kube)[-2:] == [deletion("score-t1")] * 2
    # A Role without `delete` on mpijobs, say.
    hook().create_mpijob(mpijob("score-t2", RUN_HASH), NAMESPACE)
    kube.server[f"delete {MPIJOBS_PATH}/score-t2"] << 403
    with pytest.raises(kubernetes_asyncio.client.exceptions.ApiException) as refused:
        asyncio.run(async_hook().delete_mpijob("score-t2", NAMESPACE))
    assert refused.value.status == 403


@pytest.mark.parametrize(
    "api_exception",
    [kubernetes.client.exceptions.ApiException, kubernetes_asyncio.client.exceptions.ApiException],
    ids=["sync", "async"],
)
def test_gone_is_fine_only_for_a_404(api_exception: Any) -> None:
    with gone_is_fine():
        raise api_exception(status=404, reason="Not Found")
    with pytest.raises(api_exception), gone_is_fine():
        raise api_exception(status=409, reason="Conflict")
    with pytest.raises(ValueError, match="other"), gone_is_fine():
        raise ValueError("other")


# ---- Pods and events ------------------------------------------------------------------------


def pod(name: str, job: str, role: str) -> dict[str, Any]:
    labels = {"training.kubeflow.org/job-name": job, "training.kubeflow.org/job-role": role}
    return {"metadata": {"name": name, "labels": labels}, "spec": {"containers": []}}


def test_the_async_hook_lists_an_mpijob_s_pods_by_role__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    for name, job, role in (
        ("a-launcher-x", "a", "launcher"),
        ("a-worker-0", "a", "worker"),
        ("a-worker-1", "a", "worker"),
        ("b-worker-0", "b", "worker"),
    ):
        kube.put(PODS, pod(name, job, role))

    async def listings() -> list[list[dict[str, Any]]]:
        return [
            await async_hook().launcher_pods("a", NAMESPACE),
            await async_hook().worker_pods("a", NAMESPACE),
            await async_hook().job_pods("a", NAMESPACE),
        ]

    launchers, workers, every = asyncio.run(listings())

    assert [p["metadata"]["name"] for p in launchers] == ["a-launcher-x"]
    assert sorted(p["metadata"]["name"] for p in workers) == ["a-worker-0", "a-worker-1"]
    assert len(every) == 3
    job = "training.kubeflow.org/job-name=a"
    assert [c[2]["labelSelector"] for c in calls(kube)[-3:]] == [
        f"{job},training.kubeflow.org/job-role=launcher",
        f"{job},training.kubeflow.org/job-role=worker",
        job,
    ]
    # The sync hook, for a task killed in its worker.
    assert [p["metadata"]["name"] for p in hook().launcher_pods("a", NAMESPACE)] == ["a-launcher-x"]


def test_the_async_hook_lists_the_events_about_one_object__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    for event, about in (("e1", "a-worker-0"), ("e2", "a-worker-0"), ("e3", "a-launcher")):
        kube.put(EVENTS, {"metadata": {"name": event}, "involvedObject": {"name": about}})

    events = asyncio.run(async_hook().object_events("a-worker-0", NAMESPACE))

    assert sorted(e["metadata"]["name"] for e in events) == ["e1", "e2"]
    assert calls(kube)[-1] == (
        "GET",
        f"/api/v1/namespaces/{NAMESPACE}/events",
        {"fieldSelector": "involvedObject.name=a-worker-0"},
    )


def test_a_log_is_read_whole_since_a_time_or_by_its_last_lines__emulated_api(
    kubernetes_connection: EmulatedKubernetes,
) -> None:
    kube = kubernetes_connection
    kube.put(PODS, pod("a-launcher-x", "a", "launcher"))
    log = f"/api/v1/namespaces/{NAMESPACE}/pods/a-launcher-x/log"
    kube.server[f"get {log}"] << b"2026-01-01T10:00:00Z one\n2026-01-01T10:00:01Z two\n"

    async def reads() -> list[list[str]]:
        options: list[dict[str, Any]] = [
            {"since_seconds": None},
            {"since_seconds": 30},
            {"since_seconds": None, "tail_lines": 20},
        ]
        return [
            await async_hook().read_pod_log(
                "a-launcher-x", NAMESPACE, container="launcher", **option
            )
            for option in options
        ]

    assert asyncio.run(reads())[0] == ["2026-01-01T10:00:00Z one", "2026-01-01T10:00:01Z two"]
    stamped = {"container": "launcher", "timestamps": "True"}
    assert calls(kube)[-3:] == [
        ("GET", log, stamped),
        ("GET", log, {**stamped, "sinceSeconds": "30"}),
        ("GET", log, {**stamped, "tailLines": "20"}),
    ]
    tail = hook().pod_log_tail("a-launcher-x", NAMESPACE, container="launcher", lines=5, timeout=3)
    assert tail.endswith("two\n")
    assert calls(kube)[-1] == ("GET", log, {"container": "launcher", "tailLines": "5"})
