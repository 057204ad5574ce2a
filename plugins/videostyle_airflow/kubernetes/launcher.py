"""The Kubernetes launcher: the same step, the same CLI, run as a pod or, for scoring, an MPIJob."""

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from videostyle_airflow.kubernetes.config import load_kubernetes_config
from videostyle_airflow.kubernetes.pod_spec import cli_command, step_pod_arguments
from videostyle_airflow.kubernetes.step_mpijob_operator import SCORE_STEP, StepMPIJobOperator
from videostyle_airflow.kubernetes.step_pod_operator import StepPodOperator


def kubernetes_step_operator(
    step: str,
    *,
    task_id: str,
    args: Sequence[str],
    ranks: int | str,
    returns_result_line: bool,
    **kwargs: Any,
) -> BaseOperator:
    """The operator running CLI step `step` on Kubernetes, configured by VIDEOSTYLE_KUBERNETES."""
    config = load_kubernetes_config()
    if step == SCORE_STEP:
        return StepMPIJobOperator(task_id=task_id, args=args, ranks=ranks, config=config, **kwargs)
    # Steps other than scoring run as one process: `ranks` is theirs only as an argument.
    return StepPodOperator(
        task_id=task_id,
        step=step,
        arguments=cli_command(step, args),
        returns_result_line=returns_result_line,
        **step_pod_arguments(config, step),
        **kwargs,
    )
