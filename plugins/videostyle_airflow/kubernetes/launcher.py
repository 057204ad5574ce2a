"""The Kubernetes launcher: the same step, the same CLI, run as a pod or, for a step under MPI
(scoring), an MPIJob."""

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from videostyle.steps import table as steps_table
from videostyle_airflow.kubernetes.config import load_kubernetes_config
from videostyle_airflow.kubernetes.pod_spec import cli_command, step_pod_arguments
from videostyle_airflow.kubernetes.step_mpijob_operator import StepMPIJobOperator
from videostyle_airflow.kubernetes.step_pod_operator import StepPodOperator


def kubernetes_step_operator(
    name: str,
    *,
    task_id: str,
    args: Sequence[str],
    ranks: int | str,
    **kwargs: Any,
) -> BaseOperator:
    """The operator running CLI step `name` on Kubernetes, configured by VIDEOSTYLE_KUBERNETES."""
    step = steps_table.step(name)
    config = load_kubernetes_config()
    if step.mpi:
        return StepMPIJobOperator(
            task_id=task_id, step=step.name, args=args, ranks=ranks, config=config, **kwargs
        )
    # Steps not under MPI run as one process: `ranks` is theirs only as an argument.
    return StepPodOperator(
        task_id=task_id,
        step=step.name,
        arguments=cli_command(step, args),
        returns_result_line=step.result_line,
        **step_pod_arguments(config, step.name),
        **kwargs,
    )
