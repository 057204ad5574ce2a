"""A step pod: the provider's KubernetesPodOperator, plus the step's credentials and outcome.

What it adds, and no more:
- Each try mints the step's SAS env (`credentials.step_env`) into a Secret of its own before
  the pod exists; the pod reads it through envFrom; the Secret is deleted when the try ends
  (kept across a deferral, which the pod outlives). Once the pod exists, the Secret it reads
  is owned by it (an ownerReference: Kubernetes deletes it with the pod, e.g. when the
  triggerer deletes the pod of a task killed while deferred), and the Secrets that earlier
  tries of the same task run left (their worker died) are deleted.
- The CLI's bad-input exit code fails the task without retries; other failures stay retryable.
  Either way the failure's message is the reason the step's log ends with, also pushed to
  XCom under FAILURE_XCOM_KEY (see step_failure).
- With `returns_result_line`, the step's last output line (publish's JSON naming what it
  wrote) is read off the finished pod and pushed to XCom, as the local launcher returns it;
  the task then has publication's links and announces the output (see publication).
"""

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.utils.container import get_container_status
from airflow.sdk import Context
from airflow.sdk.bases.xcom import BaseXCom
from airflow.sdk.exceptions import AirflowException, TaskDeferred
from airflow.sdk.log import mask_secret
from kubernetes.client import models as k8s
from kubernetes.client.exceptions import ApiException

from videostyle.errors import failure_reason
from videostyle_airflow import credentials, publication
from videostyle_airflow.config import BLOB_CONN_ID
from videostyle_airflow.kubernetes.mpijob_operator import (
    TASK_RUN_LABEL,
    attempt_name,
    env_secret_name,
    task_run_hash,
)
from videostyle_airflow.kubernetes.pod_spec import active_deadline_seconds
from videostyle_airflow.step_failure import BAD_INPUT_EXIT_CODE, step_failure

# Lines read back from the end of the log to find the result or failure line (stderr may
# follow it).
RESULT_TAIL_LINES = 20


def _run_hash(context: Context) -> str:
    ti = context["ti"]
    return task_run_hash(
        dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=ti.map_index
    )


def try_secret_name(context: Context) -> str:
    """The Secret of this try's env: named as the MPIJob operator names its own."""
    ti = context["ti"]
    return env_secret_name(
        attempt_name(task_id=ti.task_id, run_hash=_run_hash(context), try_number=ti.try_number)
    )


class StepPodOperator(KubernetesPodOperator):
    """
    Run one videostyle CLI step in a pod, with that step's storage credentials and nothing else.

    :param step: the CLI step: preprocess, stitch or publish.
    :param wasb_conn_id: the wasb connection whose account key signs the step's SAS.
    :param returns_result_line: push the step's last JSON output line to XCom (return_value).
    :param kwargs: KubernetesPodOperator's, `arguments` being the CLI's command line;
        `active_deadline_seconds` defaults to just under the task's execution_timeout.
    """

    def __init__(
        self,
        *,
        step: str,
        wasb_conn_id: str = BLOB_CONN_ID,
        returns_result_line: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if self.active_deadline_seconds is None:
            self.active_deadline_seconds = active_deadline_seconds(self.execution_timeout)
        self.step = step
        self.wasb_conn_id = wasb_conn_id
        self.returns_result_line = returns_result_line
        if returns_result_line:
            self.operator_extra_links = publication.LINKS
        self._env_secret: str | None = None  # for on_kill

    def execute(self, context: Context) -> Any:
        self._create_env_secret(context)
        with self._env_secret_until_done(context):
            return super().execute(context)

    def trigger_reentry(self, context: Context, event: dict[str, Any]) -> Any:
        with self._env_secret_until_done(context):
            return super().trigger_reentry(context, event)

    def on_kill(self) -> None:
        super().on_kill()
        if self._env_secret is not None:
            self._delete_secret(self._env_secret)

    def get_or_create_pod(self, pod_request_obj: k8s.V1Pod, context: Context) -> k8s.V1Pod:
        """The provider's pod (this try's, or an earlier try's it reattaches to), owning the
        Secret it reads; the task run's other Secrets, earlier tries' leftovers, deleted."""
        pod = super().get_or_create_pod(pod_request_obj, context)
        try:
            self._settle_env_secrets(pod, context)
        except Exception:
            # Else a pod is left whose Secret this try deletes as it fails: it would never start.
            self.process_pod_deletion(pod, reraise=False)
            raise
        return pod

    def build_pod_request_obj(
        self, context: Context | None = None, *, dry_run: bool = False
    ) -> k8s.V1Pod:
        """The provider's pod, its base container reading the try's Secret as env."""
        pod = super().build_pod_request_obj(context, dry_run=dry_run)
        if context is not None:
            base = next(c for c in pod.spec.containers if c.name == self.base_container_name)
            secret = k8s.V1SecretEnvSource(name=try_secret_name(context))
            base.env_from = [*(base.env_from or []), k8s.V1EnvFromSource(secret_ref=secret)]
        return pod

    def post_complete_action(
        self,
        *,
        pod: k8s.V1Pod,
        remote_pod: k8s.V1Pod,
        context: Context,
        result: dict[str, Any] | None,
        **kwargs: Any,
    ) -> None:
        status = get_container_status(remote_pod, self.base_container_name)
        terminated = status.state.terminated if status and status.state else None
        exit_code = terminated.exit_code if terminated else None
        # Read before the provider's cleanup deletes the pod, and its log with it.
        reason = self._failure_reason(remote_pod) if exit_code else None
        tail = self._log_tail(remote_pod) if self.returns_result_line and exit_code == 0 else None
        try:
            super().post_complete_action(
                pod=pod, remote_pod=remote_pod, context=context, result=result, **kwargs
            )
        except AirflowException as exc:
            bad_input = exit_code == BAD_INPUT_EXIT_CODE
            if not (reason or bad_input):
                raise  # nothing to add to the provider's own message
            raise step_failure(
                context,
                self.step,
                reason,
                bad_input=bad_input,
                exit_code=f"exit code {exit_code}",
            ) from exc
        if tail is not None:
            result = _result_line(tail)
            context["ti"].xcom_push(key=BaseXCom.XCOM_RETURN_KEY, value=result)
            publication.announce_publication(context, result, outlets=self.outlets)

    def _failure_reason(self, pod: k8s.V1Pod) -> str | None:
        """The reason in the step's failure line at the end of its log, if it is there."""
        try:
            tail = self._log_tail(pod)
        except Exception as exc:  # the failure itself is what the task must report
            self.log.warning("Cannot read the log of pod %s: %r", pod.metadata.name, exc)
            return None
        reasons = [reason for line in tail.splitlines() if (reason := failure_reason(line))]
        return reasons[-1] if reasons else None

    def _log_tail(self, pod: k8s.V1Pod) -> str:
        # Raw: the client's own decoding of a log turns it into the repr of its bytes.
        response = self.client.read_namespaced_pod_log(
            pod.metadata.name,
            pod.metadata.namespace,
            container=self.base_container_name,
            tail_lines=RESULT_TAIL_LINES,
            _preload_content=False,
        )
        return bytes(response.data).decode(errors="replace")

    @contextmanager
    def _env_secret_until_done(self, context: Context) -> Iterator[None]:
        """Delete the try's Secret when the block ends, unless it defers: the pod runs on."""
        deferred = False
        try:
            yield
        except TaskDeferred:
            deferred = True
            raise
        finally:
            if not deferred:
                self._delete_secret(try_secret_name(context))

    def _create_env_secret(self, context: Context) -> None:
        env = credentials.step_env(
            self.step,
            conn_id=self.wasb_conn_id,
            ttl=credentials.credential_ttl(self.execution_timeout),
        )
        for value in env.values():
            mask_secret(base64.b64encode(value.encode()).decode())  # as a Secret's data travels
        name = try_secret_name(context)
        body = k8s.V1Secret(
            metadata=k8s.V1ObjectMeta(
                name=name,
                namespace=self.namespace,
                labels={**self.labels, TASK_RUN_LABEL: _run_hash(context)},
            ),
            type="Opaque",
            immutable=True,
            string_data=env,
        )
        self.log.info("Creating Secret %s/%s with %s", self.namespace, name, ", ".join(env))
        # Unread response: the client logs bodies it reads at DEBUG, and this one holds the SAS.
        self.client.create_namespaced_secret(self.namespace, body, _preload_content=False)
        self._env_secret = name

    def _settle_env_secrets(self, pod: k8s.V1Pod, context: Context) -> None:
        """The Secrets of this task run's tries: those the pod reads become the pod's, the others
        go (earlier tries' leftovers, and this try's own where the pod is an earlier try's)."""
        live = self.client.read_namespaced_pod(pod.metadata.name, pod.metadata.namespace)
        read = _secrets_read_by(live)
        owner = {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": live.metadata.name,
            "uid": live.metadata.uid,
        }
        for name in self._task_run_secrets(context):
            if name in read:
                # Garbage-collected with the pod. No blockOwnerDeletion: that would need RBAC on
                # pods/finalizers, and the collector deletes it anyway.
                self.log.info(
                    "Secret %s/%s is owned by pod %s", self.namespace, name, owner["name"]
                )
                body = {"metadata": {"ownerReferences": [owner]}}
                # Unread response: it echoes the Secret's data.
                self.client.patch_namespaced_secret(
                    name, self.namespace, body, _preload_content=False
                )
            else:
                self.log.info("Secret %s/%s is not pod %s's", self.namespace, name, owner["name"])
                self._delete_secret(name)

    def _task_run_secrets(self, context: Context) -> list[str]:
        """The names of the Secrets of every try of this task run."""
        # Unread response: it holds the Secrets' data, which the client logs at DEBUG.
        response = self.client.list_namespaced_secret(
            self.namespace,
            label_selector=f"{TASK_RUN_LABEL}={_run_hash(context)}",
            _preload_content=False,
        )
        return [str(item["metadata"]["name"]) for item in json.loads(response.data)["items"]]

    def _delete_secret(self, name: str) -> None:
        self.log.info("Deleting Secret %s/%s", self.namespace, name)
        try:
            self.client.delete_namespaced_secret(name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
        if name == self._env_secret:
            self._env_secret = None


def _secrets_read_by(pod: k8s.V1Pod) -> set[str]:
    """The Secrets a pod's containers take their environment from (envFrom)."""
    containers = [*(pod.spec.init_containers or []), *(pod.spec.containers or [])]
    return {
        source.secret_ref.name
        for container in containers
        for source in container.env_from or []
        if source.secret_ref is not None
    }


def _result_line(log_tail: str) -> Any:
    """The last line of the log that is a JSON object: the step's result."""
    for line in reversed(log_tail.splitlines()):
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(parsed, dict):
            return parsed
    raise AirflowException("the step ended without a JSON result line")
