"""`make k8s-manifests OUT=folder`: the Kubernetes objects of a sample process run, as YAML.

The process DAG is loaded under the Kubernetes launcher (configured, as in production, by the
Variable VIDEOSTYLE_KUBERNETES, e.g. env AIRFLOW_VAR_VIDEOSTYLE_KUBERNETES), each task's
templates rendered for a sample run, and each object a try would create written to a file of
its own: every step's Pod (built by the provider's KubernetesPodOperator, with no cluster),
the scoring MPIJob, and the Secrets they read, whose values are placeholders: the real ones
are minted per try and exist nowhere else. `kubectl apply --dry-run=server -f folder` checks
them against a cluster (with the MPI Operator installed and the namespace created).

    python -m videostyle_airflow.kubernetes.manifests OUT [--video NAME] [--ranks N]
"""

import argparse
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import yaml
from airflow.sdk import BaseOperator, Context
from kubernetes.client import ApiClient

from videostyle_airflow import credentials
from videostyle_airflow.config import LAUNCHER_VARIABLE, PROCESS_DAG_ID
from videostyle_airflow.kubernetes.hook import try_names
from videostyle_airflow.kubernetes.mpijob_operator import ENV_SECRET_PLACEHOLDER
from videostyle_airflow.kubernetes.step_mpijob_operator import StepMPIJobOperator
from videostyle_airflow.kubernetes.step_pod_operator import StepPodOperator

SAMPLE_RUN_ID = "manual__2026-01-01T00:00:00+00:00"
PLACEHOLDER = "minted-per-try-by-the-videostyle-launcher"


def sample_objects(dag: Any, *, video: str, ranks: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """(task id, object) for every object the first tries of a run of `dag` (the process DAG,
    under the Kubernetes launcher) on `video` would create, in creation order."""
    params = sample_params(dag, video=video, ranks=ranks)
    serialize = ApiClient().sanitize_for_serialization
    for task in dag.topological_sort():
        context = sample_context(dag, task, params)
        task.render_template_fields(context, jinja_env=dag.get_template_env())
        if isinstance(task, StepPodOperator):
            secret_name = try_names(context["ti"]).secret
            secret = _placeholder_secret(secret_name, task.step, task.namespace)
            yield task.task_id, secret
            yield task.task_id, serialize(task.build_pod_request_obj(context, dry_run=True))
        elif isinstance(task, StepMPIJobOperator):
            secret = _placeholder_secret(ENV_SECRET_PLACEHOLDER, task.step, task.namespace)
            yield task.task_id, secret
            yield task.task_id, _named_mpijob(task, context)
        elif hasattr(task, "step"):
            raise TypeError(f"{task.task_id}: {type(task).__name__} is no Kubernetes step")
        # Any other task (record_claim) runs in Airflow's worker and creates nothing here.


def write_manifests(out: Path, objects: Iterator[tuple[str, dict[str, Any]]]) -> list[Path]:
    """One `NN-TASK-KIND.yaml` per object, NN its place in creation order (pods' names end in
    a random suffix, the files' do not: a rerun overwrites them); returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for index, (task_id, obj) in enumerate(objects):
        path = out / f"{index:02d}-{task_id}-{obj['kind'].lower()}.yaml"
        path.write_text(yaml.safe_dump(obj, sort_keys=False))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the YAML files into")
    parser.add_argument("--video", default="sample.mp4", help="the run's video blob name")
    parser.add_argument("--ranks", type=int, default=2, help="the run's rank count")
    args = parser.parse_args(argv)
    os.environ[f"AIRFLOW_VAR_{LAUNCHER_VARIABLE}"] = "kubernetes"
    objects = sample_objects(_process_dag(), video=args.video, ranks=args.ranks)
    for path in write_manifests(args.out, objects):
        print(path)
    return 0


def sample_params(dag: Any, *, video: str, ranks: int) -> dict[str, Any]:
    """A run's params: the DAG's defaults, this video and rank count."""
    defaults = {name: dag.params[name] for name in dag.params if name != "video"}
    return defaults | {"video": video, "ranks": ranks}


def sample_context(dag: Any, task: BaseOperator, params: dict[str, Any]) -> Context:
    """What the task runner's context holds that these tasks' templates and names read."""
    ti = SimpleNamespace(
        dag_id=dag.dag_id, run_id=SAMPLE_RUN_ID, task_id=task.task_id, map_index=-1, try_number=1
    )
    return cast(
        Context, {"dag": dag, "task": task, "ti": ti, "run_id": SAMPLE_RUN_ID, "params": params}
    )


def _process_dag() -> Any:
    dags = Path(__file__).resolve().parents[3] / "dags"
    if str(dags) not in sys.path:
        sys.path.insert(0, str(dags))
    return importlib.import_module(PROCESS_DAG_ID).dag


def _placeholder_secret(name: str, step: str, namespace: str | None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "stringData": {key: PLACEHOLDER for key in credentials.storage_env_names(step)},
    }


def _named_mpijob(task: StepMPIJobOperator, context: Context) -> dict[str, Any]:
    """The rendered MPIJob with the name and namespace the operator gives the first try."""
    metadata = {
        **task.mpijob["metadata"],
        "name": try_names(context["ti"]).mpijob,
        "namespace": task.namespace,
    }
    return {**task.mpijob, "metadata": metadata}


if __name__ == "__main__":
    sys.exit(main())
