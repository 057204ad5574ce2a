"""The Kubernetes launcher's calls to the cluster: MPIJobs, each try's Secret, tolerant deletes,
and names.

As the provider's hooks/kubernetes.py keeps its calls in KubernetesHook (sync) and
AsyncKubernetesHook (asyncio), these extend them: the operators call
VideostyleKubernetesHook, the MPIJob trigger VideostyleAsyncKubernetesHook, and neither
calls a Kubernetes API client itself. The names a try gives what it creates, and the label
that lets a later try of the same task run find what an earlier one left, are here too.

Responses that could hold a Secret's data are never read (`_preload_content=False`): the
client logs the bodies it reads at DEBUG.
"""

import base64
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, cast

from aiohttp import ClientResponse
from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook, KubernetesHook
from airflow.providers.cncf.kubernetes.kubernetes_helper_functions import generic_api_retry
from airflow.sdk.log import mask_secret
from kubernetes.client.exceptions import ApiException
from kubernetes_asyncio.client import CoreV1Api as AsyncCoreV1Api
from kubernetes_asyncio.client import CustomObjectsApi as AsyncCustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException

# Where the MPI Operator's objects live in the API.
GROUP = "kubeflow.org"
VERSION = "v2beta1"
PLURAL = "mpijobs"
KIND = "MPIJob"
API_VERSION = f"{GROUP}/{VERSION}"
# The labels the MPI Operator puts on an MPIJob's pods (job-role: launcher or worker).
JOB_SELECTOR = "training.kubeflow.org/job-name={name}"
LAUNCHER_SELECTOR = f"{JOB_SELECTOR},training.kubeflow.org/job-role=launcher"
WORKER_SELECTOR = f"{JOB_SELECTOR},training.kubeflow.org/job-role=worker"
# What every try creates carries its task run's hash, so a later try finds what an earlier
# one left.
TASK_RUN_LABEL = "videostyle/task-run"
TRY_LABEL = "videostyle/try-number"
# A sync call made while a task is being killed must not outlast the time it is given.
SYNC_REQUEST_TIMEOUT_S = 10
# So that `<name>-worker-<index>`, a worker's hostname, stays a DNS label (63 characters).
MAX_NAME_LENGTH = 48


# ---- Names ----------------------------------------------------------------------------------


class TaskTry(Protocol):
    """What names a try: the task instance's identity (the task runner's `ti`)."""

    @property
    def dag_id(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def task_id(self) -> str: ...
    @property
    def map_index(self) -> int | None: ...
    @property
    def try_number(self) -> int: ...


@dataclass(frozen=True)
class TryNames:
    """The names of one try's objects."""

    run_hash: str  # its task run's, the same for all of its tries (TASK_RUN_LABEL)
    mpijob: str  # its MPIJob, for a try that runs one
    secret: str  # the Secret holding its env


def try_names(ti: TaskTry) -> TryNames:
    """The names of the objects of try `ti`."""
    run_hash = task_run_hash(
        dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=ti.map_index
    )
    mpijob = attempt_name(task_id=ti.task_id, run_hash=run_hash, try_number=ti.try_number)
    return TryNames(run_hash=run_hash, mpijob=mpijob, secret=env_secret_name(mpijob))


def task_run_hash(*, dag_id: str, run_id: str, task_id: str, map_index: int | None) -> str:
    """10 hex digits naming one task of one DAG run, the same for all of its tries."""
    key = "\n".join((dag_id, run_id, task_id, str(map_index)))
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def attempt_name(*, task_id: str, run_hash: str, try_number: int) -> str:
    """The MPIJob of one try: `<task id, DNS-safe>-<run hash>-t<try>`, at most 48 characters."""
    suffix = f"-{run_hash}-t{try_number}"
    readable = re.sub(r"[^a-z0-9]+", "-", task_id.lower()).strip("-")
    # The MPI Operator names a Service after the MPIJob: that needs a leading letter.
    if not readable[:1].isalpha():
        readable = f"mpijob-{readable}".rstrip("-")
    return readable[: MAX_NAME_LENGTH - len(suffix)].rstrip("-") + suffix


def env_secret_name(attempt: str) -> str:
    """The Secret holding an attempt's env (the MPI Operator uses -ssh and -config)."""
    return f"{attempt}-env"


# ---- Owners and deletes ---------------------------------------------------------------------


def owner_reference(*, api_version: str, kind: str, name: str, uid: str) -> dict[str, str]:
    """An ownerReference: Kubernetes deletes the object with its owner, by the owner's uid.

    No blockOwnerDeletion: that would need RBAC on the owner's finalizers, and the garbage
    collector deletes the dependent anyway.
    """
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid}


@contextmanager
def gone_is_fine() -> Iterator[None]:
    """Around a delete: an object already gone (404) is what the delete wanted."""
    try:
        yield
    except (ApiException, AsyncApiException) as exc:
        if exc.status != 404:
            raise


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


async def _items(response: ClientResponse) -> list[dict[str, Any]]:
    """The items of a list the API answered, unread by the client (`_preload_content=False`)."""
    if response.status != 200:
        raise AsyncApiException(status=response.status, reason=response.reason)
    items: list[dict[str, Any]] = (await response.json())["items"]
    return items


# ---- Hooks ----------------------------------------------------------------------------------


class VideostyleKubernetesHook(KubernetesHook):
    """The provider's KubernetesHook, plus MPIJobs and the Secrets of a task run's tries."""

    def namespace_or_default(self, namespace: str | None) -> str:
        """`namespace`, else the connection's, else "default" (as the provider's calls do)."""
        return namespace or self.get_namespace() or self.DEFAULT_NAMESPACE

    # MPIJobs

    def create_mpijob(self, body: dict[str, Any], namespace: str) -> dict[str, Any]:
        """Create an MPIJob (its body names it); the object the API created."""
        self.log.info("Creating MPIJob %s/%s", namespace, body["metadata"]["name"])
        created = self.create_custom_object(GROUP, VERSION, PLURAL, body, namespace)
        return cast(dict[str, Any], created)

    def task_run_mpijobs(self, run_hash: str, namespace: str) -> list[str]:
        """The names of the MPIJobs of every try of task run `run_hash`."""
        listing = self.custom_object_client.list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, label_selector=f"{TASK_RUN_LABEL}={run_hash}"
        )
        return [str(mpijob["metadata"]["name"]) for mpijob in listing["items"]]

    def delete_mpijob(self, name: str, namespace: str) -> None:
        """Delete an MPIJob, its pods before it (foreground), and so its Secret; gone is fine."""
        self.log.info("Deleting MPIJob %s/%s", namespace, name)
        with gone_is_fine():
            self.delete_custom_object(
                GROUP, VERSION, PLURAL, name, namespace, propagation_policy="Foreground"
            )

    # The Secrets of a task run's tries

    def create_try_secret(
        self,
        name: str,
        namespace: str | None,
        env: Mapping[str, str],
        *,
        run_hash: str,
        labels: Mapping[str, str] | None = None,
        owner: dict[str, str] | None = None,
    ) -> None:
        """Create the immutable Secret holding a try's `env`, labelled with its task run's hash
        (see `task_run_secrets`) and, given an `owner` (`owner_reference`), owned by it."""
        namespace = self.namespace_or_default(namespace)
        data = {key: _b64(value) for key, value in env.items()}
        for value in data.values():
            mask_secret(value)  # the form a Secret's data travels in
        metadata: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "labels": {**(labels or {}), TASK_RUN_LABEL: run_hash},
        }
        if owner is not None:
            metadata["ownerReferences"] = [owner]
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata,
            "type": "Opaque",
            "immutable": True,
            "data": data,
        }
        self.log.info("Creating Secret %s/%s with %s", namespace, name, ", ".join(sorted(env)))
        # Unread response, its connection closed: it echoes the data.
        self.core_v1_client.create_namespaced_secret(
            namespace, body, _preload_content=False
        ).close()

    def own_secret(self, name: str, namespace: str | None, owner: dict[str, str]) -> None:
        """Make `owner` (`owner_reference`) the Secret's only owner."""
        body = {"metadata": {"ownerReferences": [owner]}}
        # Unread response, its connection closed: it echoes the Secret's data.
        self.core_v1_client.patch_namespaced_secret(
            name, self.namespace_or_default(namespace), body, _preload_content=False
        ).close()

    def task_run_secrets(self, run_hash: str, namespace: str | None) -> list[str]:
        """The names of the Secrets of every try of task run `run_hash`."""
        # Unread by the client: it holds the Secrets' data.
        response = self.core_v1_client.list_namespaced_secret(
            self.namespace_or_default(namespace),
            label_selector=f"{TASK_RUN_LABEL}={run_hash}",
            _preload_content=False,
        )
        return [str(item["metadata"]["name"]) for item in json.loads(response.data)["items"]]

    def delete_secret(self, name: str, namespace: str | None) -> None:
        """Delete a Secret; gone is fine."""
        namespace = self.namespace_or_default(namespace)
        self.log.info("Deleting Secret %s/%s", namespace, name)
        with gone_is_fine():
            self.core_v1_client.delete_namespaced_secret(name, namespace)

    # Pods

    def launcher_pods(self, mpijob: str, namespace: str) -> list[dict[str, Any]]:
        """The launcher pods of an MPIJob, as the API wrote them (JSON, not models)."""
        response = self.core_v1_client.list_namespaced_pod(
            namespace,
            label_selector=LAUNCHER_SELECTOR.format(name=mpijob),
            _preload_content=False,
            _request_timeout=SYNC_REQUEST_TIMEOUT_S,
        )
        pods: list[dict[str, Any]] = json.loads(response.data)["items"]
        return pods

    def pod_log_tail(
        self,
        name: str,
        namespace: str,
        *,
        container: str,
        lines: int,
        timeout: float | None = None,
    ) -> str:
        """The last `lines` lines of a container's log; waiting at most `timeout` seconds."""
        # Raw: the client's own decoding of a log turns it into the repr of its bytes.
        response = self.core_v1_client.read_namespaced_pod_log(
            name,
            namespace,
            container=container,
            tail_lines=lines,
            _preload_content=False,
            _request_timeout=timeout,
        )
        return bytes(response.data).decode(errors="replace")


class VideostyleAsyncKubernetesHook(AsyncKubernetesHook):
    """The provider's AsyncKubernetesHook, plus what waiting on an MPIJob reads and deletes.

    Each call takes a fresh client (`get_conn`): the hook reloads short-lived (exec plugin)
    credentials.
    """

    @generic_api_retry  # type: ignore[untyped-decorator]
    async def get_mpijob(self, name: str, namespace: str) -> dict[str, Any]:
        """An MPIJob, as the API wrote it."""
        async with self.get_conn() as api:
            mpijob: dict[str, Any] = await AsyncCustomObjectsApi(api).get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name
            )
            return mpijob

    async def launcher_pods(self, mpijob: str, namespace: str) -> list[dict[str, Any]]:
        """The launcher pods of an MPIJob, as the API wrote them (JSON, not models)."""
        pods: list[dict[str, Any]] = await self.list_pods(
            namespace, LAUNCHER_SELECTOR.format(name=mpijob)
        )
        return pods

    async def worker_pods(self, mpijob: str, namespace: str) -> list[dict[str, Any]]:
        """The worker pods of an MPIJob, as the API wrote them."""
        pods: list[dict[str, Any]] = await self.list_pods(
            namespace, WORKER_SELECTOR.format(name=mpijob)
        )
        return pods

    async def job_pods(self, mpijob: str, namespace: str) -> list[dict[str, Any]]:
        """Every pod of an MPIJob, launcher and workers, as the API wrote them."""
        pods: list[dict[str, Any]] = await self.list_pods(
            namespace, JOB_SELECTOR.format(name=mpijob)
        )
        return pods

    @generic_api_retry  # type: ignore[untyped-decorator]
    async def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        """The pods matching `label_selector`, as the API wrote them (JSON, not models)."""
        async with self.get_conn() as api:
            # No client-side model validation to trip over: an odd pod cannot turn "bad input"
            # into "the wait failed".
            response = cast(
                ClientResponse,  # what _preload_content=False hands back
                await AsyncCoreV1Api(api).list_namespaced_pod(
                    namespace, label_selector=label_selector, _preload_content=False
                ),
            )
            return await _items(response)

    @generic_api_retry  # type: ignore[untyped-decorator]
    async def object_events(self, name: str, namespace: str) -> list[dict[str, Any]]:
        """The core/v1 events about the objects named `name` (a pod, a Job, the MPIJob)."""
        async with self.get_conn() as api:
            response = cast(
                ClientResponse,
                await AsyncCoreV1Api(api).list_namespaced_event(
                    namespace,
                    field_selector=f"involvedObject.name={name}",
                    _preload_content=False,
                ),
            )
            return await _items(response)

    async def read_pod_log(
        self,
        name: str,
        namespace: str,
        *,
        container: str,
        since_seconds: int | None,
        tail_lines: int | None = None,
    ) -> list[str]:
        """A container's log lines, each `<RFC 3339 time> <text>`; all of it, or the last
        `since_seconds`, or the last `tail_lines` lines."""
        options: dict[str, Any] = {
            "container": container,
            "timestamps": True,
            "_preload_content": False,
        }
        if since_seconds is not None:
            options["since_seconds"] = since_seconds
        if tail_lines is not None:
            options["tail_lines"] = tail_lines
        async with self.get_conn() as api:
            response = cast(
                ClientResponse,
                await AsyncCoreV1Api(api).read_namespaced_pod_log(name, namespace, **options),
            )
            if response.status != 200:
                raise AsyncApiException(status=response.status, reason=response.reason)
            return (await response.read()).decode(errors="replace").splitlines()

    async def delete_mpijob(self, name: str, namespace: str) -> None:
        """Delete an MPIJob, its pods before it (foreground), and so its Secret; gone is fine."""
        self.log.info("Deleting MPIJob %s/%s", namespace, name)
        with gone_is_fine():
            async with self.get_conn() as api:
                await AsyncCustomObjectsApi(api).delete_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, propagation_policy="Foreground"
                )


# ---- Sweeping what tries left -----------------------------------------------------------------


class VideostyleSweepHook(VideostyleKubernetesHook):
    """The calls of the sweeper (kubernetes/sweep.py): every MPIJob and Secret any try of any
    task run created (TASK_RUN_LABEL), with its creationTimestamp, and their deletes."""

    def labelled_mpijobs(self, namespace: str) -> dict[str, str]:
        """Name → creationTimestamp (RFC 3339) of every MPIJob labelled TASK_RUN_LABEL."""
        listing = self.custom_object_client.list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, label_selector=TASK_RUN_LABEL
        )
        return _creation_times(listing["items"])

    def labelled_secrets(self, namespace: str) -> dict[str, str]:
        """Name → creationTimestamp (RFC 3339) of every Secret labelled TASK_RUN_LABEL."""
        # Unread by the client: it holds the Secrets' data.
        response = self.core_v1_client.list_namespaced_secret(
            namespace, label_selector=TASK_RUN_LABEL, _preload_content=False
        )
        return _creation_times(json.loads(response.data)["items"])


def _creation_times(items: list[dict[str, Any]]) -> dict[str, str]:
    return {
        str(item["metadata"]["name"]): str(item["metadata"]["creationTimestamp"]) for item in items
    }
