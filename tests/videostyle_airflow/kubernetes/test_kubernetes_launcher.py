"""The launcher seam: one DAG, one CLI; the Variable picks local processes or Kubernetes.

Also the Kubernetes launcher's configuration (the Variable VIDEOSTYLE_KUBERNETES) and what
its settings do to the rendered MPIJob, each result checked against the CRD.
"""

import json
from datetime import timedelta
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import BaseOperator
from pydantic import ValidationError

from tests.videostyle_airflow.kubernetes.k8s_schemas import validate_mpijob
from videostyle.steps.table import STEPS
from videostyle_airflow.config import PROCESS_DAG_ID
from videostyle_airflow.kubernetes.config import KubernetesConfig, load_kubernetes_config
from videostyle_airflow.kubernetes.manifests import sample_context, sample_params
from videostyle_airflow.kubernetes.mpijob_spec import mpijob_body
from videostyle_airflow.kubernetes.pod_spec import active_deadline_seconds
from videostyle_airflow.kubernetes.step_mpijob_operator import StepMPIJobOperator
from videostyle_airflow.kubernetes.step_pod_operator import StepPodOperator
from videostyle_airflow.local_step import LocalStepOperator

FOUR_HOURS = timedelta(hours=4)
# Tasks that run in Airflow's own worker under either launcher: no CLI step.
AIRFLOW_SIDE_TASKS = {"record_claim"}


def rendered_commands(launcher: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The process DAG parsed afresh under `launcher`: each task's class and rendered command."""
    monkeypatch.setenv("AIRFLOW_VAR_VIDEOSTYLE_LAUNCHER", launcher)
    bag = DagBag()
    assert bag.import_errors == {}
    dag = bag.dags[PROCESS_DAG_ID]
    params = sample_params(dag, video="clips/my cat.mp4", ranks=3)
    rendered: dict[str, Any] = {}
    for task in dag.tasks:
        if task.task_id in AIRFLOW_SIDE_TASKS:
            continue
        assert isinstance(task, BaseOperator)  # the process DAG maps no task
        context = sample_context(dag, task, params)
        task.render_template_fields(context, jinja_env=dag.get_template_env())
        match task:
            case LocalStepOperator():
                command = [task.step, *task.args, f"ranks={task.ranks}"]
            case StepPodOperator():
                command = task.arguments
            case StepMPIJobOperator():
                spec = task.mpijob["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]
                command = spec["containers"][0]["args"]
        rendered[task.task_id] = (type(task).__name__, command)
    return rendered


@pytest.mark.usefixtures("airflow_home")
def test_the_process_dag_renders_the_same_cli_under_both_launchers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = rendered_commands("local", monkeypatch)
    kubernetes = rendered_commands("kubernetes", monkeypatch)

    assert {task: kind for task, (kind, _) in local.items()} == dict.fromkeys(
        local, "LocalStepOperator"
    )
    assert {task: kind for task, (kind, _) in kubernetes.items()} == {
        "preprocess": "StepPodOperator",
        "score": "StepMPIJobOperator",
        "stitch": "StepPodOperator",
        "publish": "StepPodOperator",
    }
    cli = ["python", "-m", "videostyle"]
    for task in ("preprocess", "stitch", "publish"):
        *argv, _ranks = local[task][1]
        assert kubernetes[task][1] == [*cli, *argv]
    *score_argv, ranks = local["score"][1]
    assert ranks == "ranks=3"
    mpirun = ["mpirun", "-n", "3", "python", "-m", "mpi4py", "-m", "videostyle"]
    assert kubernetes["score"][1] == [*mpirun, *score_argv]
    assert kubernetes["preprocess"][1][-2:] == ["--", "clips/my cat.mp4"]


def test_the_kubernetes_launcher_keeps_the_dags_task_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from videostyle_airflow.launchers import step_task

    monkeypatch.setenv("AIRFLOW_VAR_VIDEOSTYLE_LAUNCHER", "kubernetes")
    publish = step_task(
        "publish", task_id="publish", args=["--job", "j"], execution_timeout=timedelta(minutes=15)
    )
    score = step_task(
        "score", task_id="score", args=["--job", "j"], ranks="{{ params.ranks }}", retries=3
    )

    assert isinstance(publish, StepPodOperator)
    assert publish.returns_result_line
    assert publish.active_deadline_seconds == active_deadline_seconds(timedelta(minutes=15))
    assert isinstance(score, StepMPIJobOperator)
    assert (score.retries, score.ranks) == (3, "{{ params.ranks }}")
    assert {"args", "ranks"} <= set(score.template_fields)


def test_the_configuration_comes_from_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_kubernetes_config() == KubernetesConfig()

    monkeypatch.setenv(
        "AIRFLOW_VAR_VIDEOSTYLE_KUBERNETES",
        json.dumps({"namespace": "media", "workers": 4, "clean_pod_policy": "All"}),
    )
    config = load_kubernetes_config()

    assert (config.namespace, config.workers, config.clean_pod_policy) == ("media", 4, "All")


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ({"gpu_per_worker": 2}, "Extra inputs are not permitted"),
        ({"clean_pod_policy": "None"}, "clean_pod_policy"),
        ({"worker_resources": {"requests": {"memory": "16 GB"}}}, "not a Kubernetes quantity"),
        ({"namespace": "Media_Jobs"}, "not a DNS label"),
        ({"kueue_queue": "gpu", "gang_scheduling": {"queue": "gpu"}}, "exclude each other"),
        ({"env": {"AZURE_STORAGE_CONNECTION_STRING": "AccountKey=k"}}, "each try's Secret"),
        ({"env": {"VIDEOSTYLE_WORK_URL": "az://elsewhere"}}, "each try's Secret"),
    ],
)
def test_a_wrong_configuration_is_refused_with_its_reason(
    setting: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        KubernetesConfig.model_validate(setting)


def score_job(config: KubernetesConfig, *, ranks: int = 2) -> dict[str, Any]:
    body = mpijob_body(
        config, step=STEPS["score"], args=["--job", "j"], ranks=ranks, execution_timeout=FOUR_HOURS
    )
    return {**body, "metadata": {**body["metadata"], "name": "score-0123456789-t1"}}


def test_unset_workers_follow_the_runs_ranks_and_cpu_workers_take_one_slot() -> None:
    job = score_job(KubernetesConfig(gpus_per_worker=0), ranks=5)
    validate_mpijob(job)

    spec = job["spec"]
    assert (spec["slotsPerWorker"], spec["mpiReplicaSpecs"]["Worker"]["replicas"]) == (1, 5)
    worker = spec["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in worker["resources"].get("limits", {})
    launcher = spec["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]
    assert launcher["args"][:3] == ["mpirun", "-n", "5"]


def test_gang_scheduling_waits_for_the_workers_only() -> None:
    gang = {"queue": "gpu", "priority_class": "batch", "schedule_timeout_seconds": 600}
    job = score_job(KubernetesConfig.model_validate({"workers": 4, "gang_scheduling": gang}))
    validate_mpijob(job)

    # WaitForWorkersReady creates the launcher once the workers run: a PodGroup counting it
    # would never start (mpi-operator#608).
    assert job["spec"]["runPolicy"]["schedulingPolicy"] == {
        "minAvailable": 4,
        "queue": "gpu",
        "priorityClass": "batch",
        "scheduleTimeoutSeconds": 600,
    }
    assert "kueue.x-k8s.io/queue-name" not in job["metadata"]["labels"]


@pytest.mark.parametrize(
    "timeout", [timedelta(hours=4), timedelta(minutes=15), timedelta(seconds=30)]
)
def test_deadlines_stay_strictly_under_the_tasks_timeout(timeout: timedelta) -> None:
    deadline = active_deadline_seconds(timeout)
    assert 0 < deadline < timeout.total_seconds()


def test_a_kubernetes_step_without_a_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="execution_timeout"):
        active_deadline_seconds(None)
