"""A step under MPI (scoring) on Kubernetes: the MPIJob operator, given the step's body and
credentials.

Two things only the try can know: the rank count (a templated param: the MPIJob's replica
and process counts are integers, which Jinja does not render) and the SAS, which must be
minted when the try starts, never at parse time nor in a template.
"""

from collections.abc import Sequence
from typing import Any

import jinja2
from airflow.sdk import Context

from videostyle.steps import table as steps_table
from videostyle_airflow import credentials
from videostyle_airflow.config import BLOB_CONN_ID
from videostyle_airflow.kubernetes.config import KubernetesConfig
from videostyle_airflow.kubernetes.mpijob_operator import MPIJobOperator
from videostyle_airflow.kubernetes.mpijob_spec import mpijob_body


class StepMPIJobOperator(MPIJobOperator):
    """
    Run a step under MPI (`videostyle score`) as an MPIJob built from `config`, with the
    step's SAS as env.

    :param step: the CLI step, one of the steps table's under MPI: score.
    :param args: the step's arguments, `--job JOB` (templated).
    :param ranks: the run's rank count (templated; may render to a string); with
        `config.workers` unset, one worker per rank.
    :param config: the Kubernetes launcher's configuration.
    :param wasb_conn_id: the wasb connection whose account key signs the SAS.
    """

    template_fields: Sequence[str] = (*MPIJobOperator.template_fields, "args", "ranks")

    def __init__(
        self,
        *,
        step: str,
        args: Sequence[str],
        ranks: int | str,
        config: KubernetesConfig,
        wasb_conn_id: str = BLOB_CONN_ID,
        **kwargs: Any,
    ) -> None:
        # The body is built once `args` and `ranks` are rendered (render_template_fields).
        super().__init__(
            mpijob={},
            namespace=config.namespace,
            kubernetes_conn_id=config.kubernetes_conn_id,
            poll_interval=config.poll_interval_seconds,
            startup_timeout_seconds=config.startup_timeout_seconds,
            worker_lost_seconds=config.worker_lost_seconds,
            deferrable=config.deferrable,
            **kwargs,
        )
        self.step = step
        self.args = args
        self.ranks = ranks
        self.config = config
        self.wasb_conn_id = wasb_conn_id

    def render_template_fields(
        self, context: Context, jinja_env: jinja2.Environment | None = None
    ) -> None:
        super().render_template_fields(context, jinja_env)
        self.mpijob = mpijob_body(
            self.config,
            step=steps_table.step(self.step),
            args=[str(arg) for arg in self.args],
            ranks=int(self.ranks),
            execution_timeout=self.execution_timeout,
        )

    def execute(self, context: Context) -> Any:
        self.secret_env = credentials.storage_env(
            self.step,
            conn_id=self.wasb_conn_id,
            ttl=credentials.credential_ttl(self.execution_timeout),
        )
        return super().execute(context)
