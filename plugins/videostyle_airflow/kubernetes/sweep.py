"""The sweeper: delete the MPIJobs and Secrets that tries left behind, so that none holds GPUs,
quota or a credential longer than a try can live.

A try deletes what it created when it ends, and the next try of the same task run deletes
what earlier ones left (mpijob_operator.py, step_pod_operator.py). What neither reaches: a try
whose worker died between creating its MPIJob and deferring, with no retry left (or a DAG run
deleted meanwhile); a step's Secret created just before its worker died. The sweeper deletes
every MPIJob and Secret carrying TASK_RUN_LABEL (only this project's tries set it) older than
`max_age`: no try lives longer than its task's execution_timeout, so with `max_age` above the
longest one (scoring's) plus a margin, whatever is older is nobody's. Objects without the
label are never touched, whatever their age.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator, Context

from videostyle_airflow.kubernetes.hook import VideostyleSweepHook

# Beyond the longest execution_timeout: the scheduler's and the triggerer's lag in ending a
# try that timed out, and the operator's own deletes.
SWEEP_MARGIN = timedelta(minutes=30)


@dataclass(frozen=True)
class Swept:
    """What a sweep deleted, by name."""

    mpijobs: list[str]
    secrets: list[str]


def sweep_orphans(
    hook: VideostyleSweepHook, namespace: str, *, max_age: timedelta, now: datetime
) -> Swept:
    """Delete every labelled MPIJob, then every labelled Secret, created before `now - max_age`.

    MPIJobs go first: deleting one (foreground) deletes its pods and the Secret it owns, so the
    Secrets listed afterwards are those no MPIJob took with it.
    """
    cutoff = now - max_age
    mpijobs = _older(hook.labelled_mpijobs(namespace), cutoff)
    for name in mpijobs:
        hook.delete_mpijob(name, namespace)
    secrets = _older(hook.labelled_secrets(namespace), cutoff)
    for name in secrets:
        hook.delete_secret(name, namespace)
    return Swept(mpijobs=mpijobs, secrets=secrets)


def _older(created: dict[str, str], cutoff: datetime) -> list[str]:
    """The names created before `cutoff`, from name → RFC 3339 creationTimestamp."""
    return sorted(
        name for name, timestamp in created.items() if datetime.fromisoformat(timestamp) < cutoff
    )


class SweepOrphansOperator(BaseOperator):
    """
    Delete the MPIJobs and Secrets of tries older than `max_age` (see sweep_orphans); returns
    their names.

    :param namespace: where the Kubernetes launcher runs its steps.
    :param max_age: older than this, an object is nobody's: above the longest execution_timeout
        of the tasks that create them, plus SWEEP_MARGIN.
    :param kubernetes_conn_id: the Kubernetes connection.
    """

    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        namespace: str,
        max_age: timedelta,
        kubernetes_conn_id: str = VideostyleSweepHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_age <= timedelta(0):
            raise ValueError(f"max_age must be positive, not {max_age}")
        self.namespace = namespace
        self.max_age = max_age
        self.kubernetes_conn_id = kubernetes_conn_id

    @cached_property
    def hook(self) -> VideostyleSweepHook:
        return VideostyleSweepHook(conn_id=self.kubernetes_conn_id)

    def execute(self, context: Context) -> dict[str, list[str]]:
        swept = sweep_orphans(
            self.hook,
            self.namespace,
            max_age=self.max_age,
            now=datetime.now(UTC),
        )
        self.log.info(
            "Swept %d MPIJob(s) and %d Secret(s) older than %s in namespace %s",
            len(swept.mpijobs),
            len(swept.secrets),
            self.max_age,
            self.namespace,
        )
        return {"mpijobs": swept.mpijobs, "secrets": swept.secrets}
