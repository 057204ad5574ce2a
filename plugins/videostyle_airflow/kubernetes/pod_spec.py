"""What every videostyle pod shares, and the KubernetesPodOperator arguments of a step pod.

Pods run the worker image (images/worker) as its unprivileged user, on a read-only root
filesystem: the step's scratch and /tmp are emptyDirs, every capability is dropped, and no
service account token is mounted (no step calls the Kubernetes API). Storage credentials
arrive only as env from the try's Secret (see step_pod_operator.py and the MPIJob operator).
"""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from kubernetes.client import models as k8s
from kubernetes.utils.quantity import parse_quantity

from videostyle.steps.table import Step
from videostyle_airflow.kubernetes.config import KubernetesConfig, Placement, Resources

# The worker image's user: mpiuser, uid and gid 1000 (images/worker/Dockerfile).
IMAGE_USER_ID = 1000
SCRATCH_DIR = "/scratch"
TMP_DIR = "/tmp"  # noqa: S108 (an emptyDir of the pod's own, not a shared /tmp)
GPU_RESOURCE = "nvidia.com/gpu"
EPHEMERAL_STORAGE = "ephemeral-storage"
# /tmp: what ffmpeg and Python put there, never a step's data (that goes to scratch).
TMP_SIZE = "1Gi"
APP_NAME = "videostyle"
# Time the MPI Operator or the kubelet gets to stop a step that overran, and Airflow to see
# it, before the task's own execution_timeout strikes.
DEADLINE_MARGIN = timedelta(minutes=5)


def cli_command(step: Step, args: Sequence[str], *, ranks: int = 1) -> list[str]:
    """The step's command line in the worker image: the steps table's, with its `python` and
    `mpirun` (`python -m videostyle STEP ARGS`, under `mpirun -n RANKS` for a step under MPI).

    Given as the container's args, so the image's entrypoint (tini) stays PID 1 in front.
    """
    return step.command(args, python="python", mpirun="mpirun", ranks=ranks)


def labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/component": component}


def env_vars(config: KubernetesConfig) -> dict[str, str]:
    """The non-secret settings of every step: the configured ones, and where scratch lives."""
    return {**config.env, "VIDEOSTYLE_SCRATCH_DIR": SCRATCH_DIR}


def active_deadline_seconds(execution_timeout: timedelta | None) -> int:
    """A deadline for the pods strictly under the task's execution_timeout."""
    if execution_timeout is None:
        raise ValueError("a Kubernetes step needs an execution_timeout to bound its pods")
    margin = min(DEADLINE_MARGIN, execution_timeout / 10)
    seconds = int((execution_timeout - margin).total_seconds())
    if seconds < 1:
        raise ValueError(f"execution_timeout {execution_timeout} is too short for a pod")
    return seconds


def pod_security_context() -> k8s.V1PodSecurityContext:
    return k8s.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=IMAGE_USER_ID,
        run_as_group=IMAGE_USER_ID,
        fs_group=IMAGE_USER_ID,  # the emptyDirs are the user's
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


def container_security_context() -> k8s.V1SecurityContext:
    return k8s.V1SecurityContext(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
    )


def scratch_volumes(config: KubernetesConfig, *, size: str | None = None) -> list[k8s.V1Volume]:
    """The scratch and /tmp emptyDirs; scratch of `size`, else the configured scratch_size."""
    return [
        k8s.V1Volume(
            name="scratch",
            empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=size or config.scratch_size),
        ),
        k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=TMP_SIZE)),
    ]


def ephemeral_storage(volumes: Sequence[k8s.V1Volume]) -> str:
    """The local disk a pod's emptyDirs may fill together: the sum of their sizeLimits."""
    total = sum(
        parse_quantity(volume.empty_dir.size_limit)
        for volume in volumes
        if volume.empty_dir is not None and volume.empty_dir.size_limit
    )
    return _bytes_quantity(int(total))


def _bytes_quantity(amount: int) -> str:
    for suffix, unit in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if amount and amount % unit == 0:
            return f"{amount // unit}{suffix}"
    return str(amount)


def scratch_mounts() -> list[k8s.V1VolumeMount]:
    return [
        k8s.V1VolumeMount(name="scratch", mount_path=SCRATCH_DIR),
        k8s.V1VolumeMount(name="tmp", mount_path=TMP_DIR),
    ]


def resources(
    spec: Resources, *, volumes: Sequence[k8s.V1Volume], gpus: int = 0
) -> k8s.V1ResourceRequirements:
    """Requests and limits; GPUs are limits only (Kubernetes makes the request equal).

    Unless `spec` requests ephemeral-storage itself, the pod requests what its emptyDirs
    (`volumes`) may hold: the scheduler then places it only on a node with that much disk, and
    a kubelet short of disk evicts the pods using more than they requested first.
    """
    requests: dict[str, str] = {name: amount for name, amount in spec.requests.items()}
    requests.setdefault(EPHEMERAL_STORAGE, ephemeral_storage(volumes))
    limits: dict[str, str] = {name: amount for name, amount in spec.limits.items()}
    if gpus:
        limits[GPU_RESOURCE] = str(gpus)
    return k8s.V1ResourceRequirements(requests=requests, limits=limits or None)


def tolerations(placement: Placement) -> list[k8s.V1Toleration]:
    return [k8s.V1Toleration(**t.model_dump(exclude_none=True)) for t in placement.tolerations]


def step_pod_arguments(config: KubernetesConfig, step: str) -> dict[str, Any]:
    """KubernetesPodOperator's arguments for a step pod, but its `arguments` (the CLI) and its
    deadline (from the task's execution_timeout, see StepPodOperator)."""
    placement = config.launcher_placement
    volumes = scratch_volumes(config)
    return {
        "kubernetes_conn_id": config.kubernetes_conn_id,
        "namespace": config.namespace,
        "image": config.image,
        "image_pull_policy": config.image_pull_policy,
        "name": f"{APP_NAME}-{step}",
        "labels": labels(step),
        "env_vars": env_vars(config),
        "container_resources": resources(config.step_resources, volumes=volumes),
        "volumes": volumes,
        "volume_mounts": scratch_mounts(),
        "security_context": pod_security_context(),
        "container_security_context": container_security_context(),
        "service_account_name": config.service_account,
        "automount_service_account_token": False,
        "node_selector": dict(placement.node_selector),
        "tolerations": tolerations(placement),
        "startup_timeout_seconds": config.startup_timeout_seconds,
        "poll_interval": config.poll_interval_seconds,
        "deferrable": config.deferrable,
        "on_finish_action": "delete_pod",
    }
