"""Run one MPIJob (Kubeflow MPI Operator) per task try: create, wait, map the outcome, delete.

"Launcher" in this module is the MPI Operator's term: the MPIJob's launcher pod, which runs
mpirun (not the local/kubernetes launchers of videostyle_airflow.launchers).
"""

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.sdk.log import mask_secret

from videostyle_airflow.kubernetes.config import KubernetesConfig
from videostyle_airflow.kubernetes.hook import (
    API_VERSION,
    KIND,
    SYNC_REQUEST_TIMEOUT_S,
    TASK_RUN_LABEL,
    TRY_LABEL,
    TryNames,
    VideostyleKubernetesHook,
    owner_reference,
    try_names,
)
from videostyle_airflow.kubernetes.mpijob_outcome import Outcome, mpijob_state
from videostyle_airflow.kubernetes.mpijob_trigger import (
    TAIL_LINES,
    MPIJobTrigger,
    started_launcher,
)
from videostyle_airflow.step_failure import step_failure

# The name the MPIJob body gives the Secret holding `secret_env`; each attempt replaces it with
# the attempt's own Secret. A valid name, so rendered manifests pass a server-side dry run.
ENV_SECRET_PLACEHOLDER = "mpijob-attempt-env"  # noqa: S105 (a Secret's name, not a secret)
# The Kubernetes launcher's defaults (see KubernetesConfig).
DEFAULT_STARTUP_TIMEOUT_S = float(KubernetesConfig.model_fields["startup_timeout_seconds"].default)
DEFAULT_WORKER_LOST_S = float(KubernetesConfig.model_fields["worker_lost_seconds"].default)


def env_from_attempt_secret() -> dict[str, Any]:
    """An `envFrom` entry giving a container every variable of the operator's `secret_env`."""
    return {"secretRef": {"name": ENV_SECRET_PLACEHOLDER}}


class MPIJobOperator(BaseOperator):
    """
    Run an MPIJob (kubeflow.org/v2beta1) to its end, then delete it with its pods.

    Each try creates a fresh MPIJob named by `attempt_name` and labelled with its task run's
    hash, after deleting whatever an earlier try of the same task run left. The outcome
    (`mpijob_state`): Succeeded returns the MPIJob's name; Failed (evicted, launcher failed,
    deadline) raises a retryable error; a launcher exiting with the CLI's bad-input code fails
    the task without retries. The try also ends, for a retry, when the MPIJob is not running
    `startup_timeout_seconds` after its creation or admission (the pods' events say why), or
    when one of its workers is missing or not Ready for `worker_lost_seconds` while it runs
    (its spot node taken away). API failures are only logged, until the wait's deadline (see
    MPIJobTrigger). A failure's message carries the reason
    the launcher's log gave, also pushed to XCom under FAILURE_XCOM_KEY (see step_failure).
    While it runs, the launcher's log is copied into the task log (see MPIJobTrigger); however
    the try ends, its last lines are copied before the MPIJob is deleted, and a failure
    repeats them (TAIL_LINES). The MPIJob is deleted (foreground: its pods first) however the
    wait ends, and by `on_kill`.

    `secret_env` goes into a Secret owned by the MPIJob, so Kubernetes deletes it with the
    MPIJob. The body names it ENV_SECRET_PLACEHOLDER (e.g. `"envFrom": [env_from_attempt_secret()]`
    in the launcher's container); each attempt substitutes its own Secret's name.

    :param mpijob: the MPIJob body without metadata.name (templated); its metadata may carry
        labels and annotations, apiVersion and kind may be left out.
    :param namespace: where to run it (templated); defaults to the connection's namespace,
        else "default".
    :param secret_env: environment variables for the pods (templated); never logged, and
        redacted in the UI's rendered fields for the field's name.
    :param kubernetes_conn_id: the Kubernetes connection.
    :param poll_interval: seconds between status polls.
    :param wait_timeout: the longest wait for an outcome, queueing and suspension included;
        defaults to `execution_timeout`; with neither, the wait is unlimited.
    :param startup_timeout_seconds: seconds the MPIJob may take to run, from its creation or its
        admission (suspension excluded); None for as long as it takes.
    :param worker_lost_seconds: seconds a worker may be missing or not Ready while the
        MPIJob runs; None for as long as the MPI Operator lets it.
    :param deferrable: wait in the triggerer (the default) rather than in the worker.
    """

    template_fields: Sequence[str] = ("mpijob", "namespace", "secret_env")
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        mpijob: dict[str, Any],
        namespace: str | None = None,
        secret_env: dict[str, str] | None = None,
        kubernetes_conn_id: str = VideostyleKubernetesHook.default_conn_name,
        poll_interval: float = 30,
        wait_timeout: timedelta | None = None,
        startup_timeout_seconds: float | None = DEFAULT_STARTUP_TIMEOUT_S,
        worker_lost_seconds: float | None = DEFAULT_WORKER_LOST_S,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        metadata = mpijob.get("metadata", {})
        if "name" in metadata or "generateName" in metadata:
            raise ValueError("leave metadata.name out of `mpijob`: each try names its own MPIJob")
        if (mpijob.get("apiVersion", API_VERSION), mpijob.get("kind", KIND)) != (API_VERSION, KIND):
            raise ValueError(f"`mpijob` must be a {API_VERSION} {KIND}")
        self.mpijob = mpijob
        self.namespace = namespace
        self.secret_env = secret_env
        self.kubernetes_conn_id = kubernetes_conn_id
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout
        self.startup_timeout_seconds = startup_timeout_seconds
        self.worker_lost_seconds = worker_lost_seconds
        self.deferrable = deferrable
        self._attempt: tuple[str, str] | None = None  # (name, namespace), for on_kill

    @cached_property
    def hook(self) -> VideostyleKubernetesHook:
        return VideostyleKubernetesHook(conn_id=self.kubernetes_conn_id)

    def execute(self, context: Context) -> Any:
        for value in (self.secret_env or {}).values():
            mask_secret(value)
        ti = context["ti"]
        names = try_names(ti)
        name = names.mpijob
        namespace = self.hook.namespace_or_default(self.namespace)
        body = self._body(
            names,
            namespace,
            labels={TASK_RUN_LABEL: names.run_hash, TRY_LABEL: str(ti.try_number)},
            # For people looking at the cluster: which Airflow task this is.
            annotations={
                "videostyle/dag-id": ti.dag_id,
                "videostyle/run-id": ti.run_id,
                "videostyle/task-id": ti.task_id,
            },
        )

        for leftover in self.hook.task_run_mpijobs(names.run_hash, namespace):
            self.log.info("An earlier try left MPIJob %s", leftover)
            self.hook.delete_mpijob(leftover, namespace)
        self._attempt = (name, namespace)
        try:
            created = self.hook.create_mpijob(body, namespace)
            created_at = time.time()
            if self.secret_env:
                self.hook.create_try_secret(
                    names.secret,
                    namespace,
                    self.secret_env,
                    run_hash=names.run_hash,
                    # Garbage-collected with the MPIJob.
                    owner=owner_reference(
                        api_version=API_VERSION,
                        kind=KIND,
                        name=name,
                        uid=created["metadata"]["uid"],
                    ),
                )
        except Exception:
            self.hook.delete_mpijob(name, namespace)
            raise

        timeout = self.wait_timeout or self.execution_timeout
        trigger = MPIJobTrigger(
            name=name,
            namespace=namespace,
            kubernetes_conn_id=self.kubernetes_conn_id,
            poll_interval=self.poll_interval,
            deadline=time.time() + timeout.total_seconds() if timeout else None,
            created_at=created_at,
            startup_timeout_seconds=self.startup_timeout_seconds,
            worker_lost_seconds=self.worker_lost_seconds,
        )
        if self.deferrable:
            self.defer(trigger=trigger, method_name="execute_complete")
        # Waiting here runs the same trigger, in this process.
        try:
            event = asyncio.run(_first_event(trigger))
        except BaseException:
            self.hook.delete_mpijob(name, namespace)
            raise
        return self.execute_complete(context, event)

    def execute_complete(self, context: Context, event: Mapping[str, Any]) -> str:
        """Map the trigger's event to the task's outcome, and delete the MPIJob either way."""
        name, namespace = event["name"], event["namespace"]
        try:
            if (failure := self._failure(context, event)) is None:
                self.log.info("MPIJob %s/%s succeeded", namespace, name)
                return str(name)
            raise self._with_launcher_tail(failure, event)
        finally:
            self.hook.delete_mpijob(name, namespace)

    def _failure(self, context: Context, event: Mapping[str, Any]) -> AirflowException | None:
        """What fails the try, from the trigger's event; None when the MPIJob succeeded."""
        subject = f"MPIJob {event['namespace']}/{event['name']}"
        if error := event.get("error"):
            return AirflowException(f"{subject}: {error}")
        reason = event.get("failure")  # absent from an event of an older trigger
        if retry := event.get("retry"):  # start-up timeout, lost worker
            return step_failure(
                context,
                subject,
                reason,
                bad_input=False,
                exit_code="no exit code",
                failed=retry,
                reason_after="; the launcher said: ",
            )
        state = mpijob_state(event["status"], launcher_exit_code=event["launcher_exit_code"])
        if state.outcome is Outcome.SUCCEEDED:
            return None
        return step_failure(
            context,
            subject,
            reason,
            bad_input=state.outcome is Outcome.BAD_INPUT,
            exit_code=f"launcher exit code {event['launcher_exit_code']}",
            failed=f"did not succeed ({state.reason}): {state.message}",
            reason_after="; the launcher said: ",
        )

    def _with_launcher_tail(
        self, failure: AirflowException, event: Mapping[str, Any]
    ) -> AirflowException:
        """Log the launcher log's last lines again, next to the failure; and, when the launcher
        named no reason, carry them in the failure's message: more than a condition's reason."""
        tail = event.get("tail") or []  # absent from an event of an older trigger
        if not tail:
            return failure
        lines = "\n".join(tail)
        self.log.error("The launcher's last %d lines:\n%s", len(tail), lines)
        if event.get("failure"):
            return failure
        return type(failure)(f"{failure}\nThe launcher's last lines:\n{lines}")

    def on_kill(self) -> None:
        if self._attempt is not None:
            self._copy_launcher_tail(*self._attempt)
            self.hook.delete_mpijob(*self._attempt)

    def _copy_launcher_tail(self, name: str, namespace: str) -> None:
        """Copy the launcher log's last lines into the task log: how far a killed try got."""
        try:
            pod = started_launcher(self.hook.launcher_pods(name, namespace))
            if pod is None:
                return
            tail = self.hook.pod_log_tail(
                pod["metadata"]["name"],
                namespace,
                container=pod["spec"]["containers"][0]["name"],
                lines=TAIL_LINES,
                timeout=SYNC_REQUEST_TIMEOUT_S,
            )
        except Exception as exc:  # the log is for people: the MPIJob goes all the same
            self.log.warning("Cannot read the launcher's log of MPIJob %s: %r", name, exc)
            return
        self.log.info("The launcher's last lines:\n%s", tail.rstrip("\n"))

    def _body(
        self,
        names: TryNames,
        namespace: str,
        *,
        labels: dict[str, str],
        annotations: dict[str, str],
    ) -> dict[str, Any]:
        body = _replace_string(self.mpijob, ENV_SECRET_PLACEHOLDER, names.secret)
        if (body != self.mpijob) != bool(self.secret_env):
            raise AirflowFailException(
                f"`secret_env` and a reference to {ENV_SECRET_PLACEHOLDER!r} in `mpijob` go "
                "together: one without the other leaves a Secret unused or pods without one"
            )
        metadata = body.get("metadata", {})
        return {
            **body,
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                **metadata,
                "name": names.mpijob,
                "namespace": namespace,
                "labels": {**metadata.get("labels", {}), **labels},
                "annotations": {**metadata.get("annotations", {}), **annotations},
            },
        }


async def _first_event(trigger: MPIJobTrigger) -> Any:
    return (await anext(aiter(trigger.run()))).payload


def _replace_string(node: Any, old: str, new: str) -> Any:
    """A copy of a JSON-like `node` with every string equal to `old` replaced by `new`."""
    if isinstance(node, dict):
        return {key: _replace_string(value, old, new) for key, value in node.items()}
    if isinstance(node, list):
        return [_replace_string(item, old, new) for item in node]
    return new if node == old else node
