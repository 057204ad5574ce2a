"""A step pod: the provider's KubernetesPodOperator, plus the step's credentials and outcome.

What it adds, and no more:
- Each try mints the step's SAS env (`credentials.storage_env`) into a Secret of its own before
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

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.utils.container import get_container_status
from airflow.sdk import Context
from airflow.sdk.bases.xcom import BaseXCom
from airflow.sdk.exceptions import AirflowException, TaskDeferred
from kubernetes.client import models as k8s

from videostyle.errors import BAD_INPUT_EXIT_CODE, failure_reason
from videostyle_airflow import credentials, publication
from videostyle_airflow.config import BLOB_CONN_ID
from videostyle_airflow.kubernetes.hook import (
    VideostyleKubernetesHook,
    owner_reference,
    try_names,
)
from videostyle_airflow.kubernetes.pod_spec import active_deadline_seconds
from videostyle_airflow.step_failure import step_failure, step_result

# Lines read back from the end of the log to find the result or failure line (stderr may
# follow it).
RESULT_TAIL_LINES = 20


class StepPodOperator(KubernetesPodOperator):
    """
    Run one videostyle CLI step in a pod, with that step's storage credentials and nothing else.

    :param step: the CLI step, one of the steps table's not under MPI.
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

    @cached_property
    def hook(self) -> VideostyleKubernetesHook:
        """The provider's hook, as KubernetesPodOperator makes it, with the try's Secrets."""
        return VideostyleKubernetesHook(
            conn_id=self.kubernetes_conn_id,
            in_cluster=self.in_cluster,
            config_file=self.config_file,
            cluster_context=self.cluster_context,
        )

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
            secret = k8s.V1SecretEnvSource(name=try_names(context["ti"]).secret)
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
            result = step_result(self.step, tail.splitlines())
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
        return self.hook.pod_log_tail(
            pod.metadata.name,
            pod.metadata.namespace,
            container=self.base_container_name,
            lines=RESULT_TAIL_LINES,
        )

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
                self._delete_secret(try_names(context["ti"]).secret)

    def _create_env_secret(self, context: Context) -> None:
        env = credentials.storage_env(
            self.step,
            conn_id=self.wasb_conn_id,
            ttl=credentials.credential_ttl(self.execution_timeout),
        )
        names = try_names(context["ti"])
        self.hook.create_try_secret(
            names.secret, self.namespace, env, run_hash=names.run_hash, labels=self.labels
        )
        self._env_secret = names.secret

    def _settle_env_secrets(self, pod: k8s.V1Pod, context: Context) -> None:
        """The Secrets of this task run's tries: those the pod reads become the pod's, the others
        go (earlier tries' leftovers, and this try's own where the pod is an earlier try's)."""
        live = self.hook.get_pod(pod.metadata.name, pod.metadata.namespace)
        read = _secrets_read_by(live)
        owner = owner_reference(
            api_version="v1", kind="Pod", name=live.metadata.name, uid=live.metadata.uid
        )
        for name in self.hook.task_run_secrets(try_names(context["ti"]).run_hash, self.namespace):
            if name in read:
                # Garbage-collected with the pod.
                self.log.info(
                    "Secret %s/%s is owned by pod %s", self.namespace, name, owner["name"]
                )
                self.hook.own_secret(name, self.namespace, owner)
            else:
                self.log.info("Secret %s/%s is not pod %s's", self.namespace, name, owner["name"])
                self._delete_secret(name)

    def _delete_secret(self, name: str) -> None:
        self.hook.delete_secret(name, self.namespace)
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
