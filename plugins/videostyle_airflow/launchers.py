"""One seam, many launchers: a step is defined once; configuration picks where it runs.

The DAGs call `step_task` only. Each launcher builds its operator from the same step
definition (its row of the steps table, videostyle.steps.table; its arguments; its rank
count): `local` runs it as a child process of the worker, `kubernetes` as a pod, or for a step
under MPI (scoring) as an MPIJob (videostyle_airflow.kubernetes, configured by the Variable
VIDEOSTYLE_KUBERNETES). "Launcher" names this seam only; the MPIJob's "launcher pod" is the MPI
Operator's own term.
"""

from collections.abc import Callable, Sequence
from typing import Any

from airflow.sdk import BaseOperator, Variable

from videostyle.steps.table import Step
from videostyle.steps.table import step as step_named
from videostyle_airflow.config import LAUNCHER_VARIABLE
from videostyle_airflow.local_step import LocalStepOperator

DEFAULT_LAUNCHER = "local"

StepOperatorFactory = Callable[..., BaseOperator]


def _local(
    step: Step, *, task_id: str, args: Sequence[str], ranks: int | str, **kwargs: Any
) -> BaseOperator:
    return LocalStepOperator(
        task_id=task_id,
        step=step.name,
        args=args,
        ranks=ranks,
        returns_result_line=step.result_line,
        **kwargs,
    )


def _kubernetes(
    step: Step, *, task_id: str, args: Sequence[str], ranks: int | str, **kwargs: Any
) -> BaseOperator:
    # Imported here, so that DAGs parsed for the local launcher never load the Kubernetes client.
    from videostyle_airflow.kubernetes.launcher import kubernetes_step_operator

    return kubernetes_step_operator(step.name, task_id=task_id, args=args, ranks=ranks, **kwargs)


LAUNCHERS: dict[str, StepOperatorFactory] = {"local": _local, "kubernetes": _kubernetes}


def configured_launcher() -> str:
    """The Airflow Variable VIDEOSTYLE_LAUNCHER (env AIRFLOW_VAR_VIDEOSTYLE_LAUNCHER), or local."""
    return str(Variable.get(LAUNCHER_VARIABLE, default=DEFAULT_LAUNCHER))


def step_task(
    step: str,
    *,
    task_id: str,
    args: Sequence[str],
    ranks: int | str = 1,
    **operator_kwargs: Any,
) -> BaseOperator:
    """The operator running CLI step `step` with `args` on `ranks` processes (both templated);
    `ranks` matters to a step of the table that runs under MPI only."""
    spec = step_named(step)
    launcher = configured_launcher()
    try:
        make = LAUNCHERS[launcher]
    except KeyError:
        raise ValueError(
            f"{LAUNCHER_VARIABLE}={launcher!r} names no launcher; known: {', '.join(LAUNCHERS)}"
        ) from None
    return make(spec, task_id=task_id, args=args, ranks=ranks, **operator_kwargs)
