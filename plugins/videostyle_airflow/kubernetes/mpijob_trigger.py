"""Wait for an MPIJob to end: in the triggerer, or inline for a non-deferrable operator."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, cast

from aiohttp import ClientResponse
from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook
from airflow.providers.cncf.kubernetes.kubernetes_helper_functions import generic_api_retry
from airflow.triggers.base import BaseTrigger, TriggerEvent
from kubernetes_asyncio.client import CoreV1Api, CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException

from videostyle_airflow.kubernetes.mpijob_outcome import (
    Outcome,
    launcher_exit_code,
    mpijob_state,
)

# Where the MPI Operator's objects live in the API.
GROUP = "kubeflow.org"
VERSION = "v2beta1"
PLURAL = "mpijobs"
KIND = "MPIJob"
API_VERSION = f"{GROUP}/{VERSION}"
# The labels the MPI Operator puts on an MPIJob's launcher pods.
LAUNCHER_SELECTOR = "training.kubeflow.org/job-name={name},training.kubeflow.org/job-role=launcher"


class MPIJobTrigger(BaseTrigger):
    """
    Poll an MPIJob until its outcome is decided (`mpijob_state`), then fire one event.

    The event's payload holds `name` and `namespace`, and either `status` (the MPIJob's
    `.status`) with `launcher_exit_code` (read off the launcher pod once the MPIJob failed;
    None when unknown), or `error` (the deadline passed, the MPIJob vanished, the API failed):
    every way the wait ends reaches the operator, which deletes the MPIJob.

    :param name: the MPIJob's name.
    :param namespace: its namespace.
    :param kubernetes_conn_id: the Kubernetes connection.
    :param poll_interval: seconds between polls.
    :param deadline: UNIX time at which waiting gives up, None for never; absolute, so that
        a restarted triggerer does not wait longer.
    """

    def __init__(
        self,
        *,
        name: str,
        namespace: str,
        kubernetes_conn_id: str,
        poll_interval: float,
        deadline: float | None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.name = name
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.poll_interval = poll_interval
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "name": self.name,
                "namespace": self.namespace,
                "kubernetes_conn_id": self.kubernetes_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = AsyncKubernetesHook(conn_id=self.kubernetes_conn_id)
        reported: tuple[Outcome, str] | None = None
        try:
            while True:
                status = (await self._read_mpijob(hook)).get("status")
                state = mpijob_state(status)
                exit_code = None
                if state.outcome is Outcome.RETRY:  # failed: the launcher may say "bad input"
                    exit_code = launcher_exit_code(await self._launcher_pods(hook))
                    state = mpijob_state(status, launcher_exit_code=exit_code)
                if (state.outcome, state.reason) != reported:
                    reported = (state.outcome, state.reason)
                    self.log.info(
                        "MPIJob %s/%s: %s (%s) %s",
                        self.namespace,
                        self.name,
                        state.reason,
                        state.outcome.value,
                        state.message,
                    )
                if state.outcome is not Outcome.RUNNING:
                    yield self._event(status=status, launcher_exit_code=exit_code)
                    return
                wait = self.poll_interval
                if self.deadline is not None:
                    if time.time() >= self.deadline:
                        yield self._event(error=f"still {state.reason} at the deadline")
                        return
                    wait = min(wait, self.deadline - time.time())
                await asyncio.sleep(max(wait, 0))
        except ApiException as exc:
            yield self._event(error=f"the Kubernetes API answered {exc.status} {exc.reason}")
        except Exception as exc:  # the operator must hear of every failure to clean up
            yield self._event(error=f"waiting failed: {exc!r}")

    async def on_kill(self) -> None:
        """A user killed the deferred task: delete the MPIJob (its pods and Secret go with it)."""
        self.log.info("Deleting MPIJob %s/%s: the task was killed", self.namespace, self.name)
        hook = AsyncKubernetesHook(conn_id=self.kubernetes_conn_id)
        try:
            async with hook.get_conn() as api:
                await CustomObjectsApi(api).delete_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    self.name,
                    propagation_policy="Foreground",
                )
        except ApiException as exc:
            if exc.status != 404:
                raise

    @generic_api_retry  # type: ignore[untyped-decorator]
    async def _read_mpijob(self, hook: AsyncKubernetesHook) -> dict[str, Any]:
        # A fresh client per poll: the hook reloads short-lived (exec plugin) credentials.
        async with hook.get_conn() as api:
            mpijob: dict[str, Any] = await CustomObjectsApi(api).get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name
            )
            return mpijob

    @generic_api_retry  # type: ignore[untyped-decorator]
    async def _launcher_pods(self, hook: AsyncKubernetesHook) -> list[dict[str, Any]]:
        async with hook.get_conn() as api:
            # The JSON as the API wrote it, like the MPIJob's: no client-side model validation
            # to trip over, so an odd pod cannot turn "bad input" into "the wait failed".
            response = cast(
                ClientResponse,  # what _preload_content=False hands back
                await CoreV1Api(api).list_namespaced_pod(
                    self.namespace,
                    label_selector=LAUNCHER_SELECTOR.format(name=self.name),
                    _preload_content=False,
                ),
            )
            if response.status != 200:
                raise ApiException(status=response.status, reason=response.reason)
            pods: list[dict[str, Any]] = (await response.json())["items"]
            return pods

    def _event(self, **fields: Any) -> TriggerEvent:
        payload = {"name": self.name, "namespace": self.namespace, **fields}
        return TriggerEvent(payload)  # type: ignore[no-untyped-call]
