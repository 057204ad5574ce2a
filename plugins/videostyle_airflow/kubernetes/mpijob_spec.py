"""The MPIJob (kubeflow.org/v2beta1) that runs a step under MPI (scoring): the MPI Operator's
launcher pod running mpirun, and GPU workers.

The launcher pod runs `mpirun -n WORKERS*SLOTS python -m mpi4py -m videostyle score --job JOB`
(the steps table's command, pod_spec.cli_command);
the MPI Operator hands it the hostfile (HYDRA_HOST_FILE, in MPICH mode) and an ssh key, and
Hydra starts the ranks over ssh on the workers, which run only sshd. Hydra passes the
launcher's environment, the try's SAS Secret included, on to every rank: the workers' pod
spec references no Secret.
"""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client import models as k8s

from videostyle.steps.table import Step
from videostyle_airflow.kubernetes import pod_spec
from videostyle_airflow.kubernetes.config import KubernetesConfig, Placement
from videostyle_airflow.kubernetes.hook import API_VERSION, KIND
from videostyle_airflow.kubernetes.mpijob_operator import env_from_attempt_secret

# The worker image's MPI (images/worker: the `mpich` wheel); the CRD allows OpenMPI, Intel, MPICH.
MPI_IMPLEMENTATION = "MPICH"
# Where the operator mounts the job's ssh key: the image user's ~/.ssh (images/worker).
SSH_AUTH_MOUNT_PATH = "/home/mpiuser/.ssh"
# The workers' sshd (images/worker/sshd_config): a non-root user's port, no privileges needed.
SSH_PORT = 2222
SSHD_COMMAND = ["/usr/sbin/sshd", "-De"]
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
# The launcher's scratch: it runs mpirun only, the ranks (and their scratch) are on the workers.
LAUNCHER_SCRATCH_SIZE = "1Gi"
# Read by images/worker/entrypoint.sh on the launcher: how long to wait for the workers' names.
WORKERS_WAIT_VARIABLE = "VIDEOSTYLE_WORKERS_WAIT_SECONDS"
# Extra arguments the image's Hydra (MPICH 5) gives ssh. The MPI Operator sets
# HYDRA_LAUNCH_EXTRA_ARGS, an old Hydra's name that this one ignores: its intent (retry the
# connection to a worker whose sshd lags its readiness) is set here under the name read. The
# operator's variable stays, harmless: nothing reads it. Keepalives are the image's
# (images/worker/ssh_config).
HYDRA_LAUNCHER_EXTRA_ARGS = "HYDRA_LAUNCHER_EXTRA_ARGS"
SSH_EXTRA_ARGS = "-o ConnectionAttempts=10"


def workers_for(config: KubernetesConfig, ranks: int) -> int:
    """Worker pods: as configured, else one per rank the run asks for."""
    return config.workers or ranks


def mpijob_body(
    config: KubernetesConfig,
    *,
    step: Step,
    args: Sequence[str],
    ranks: int,
    execution_timeout: timedelta | None,
) -> dict[str, Any]:
    """The MPIJob running `step` (score) with `args` (`--job JOB`), without metadata.name (each try
    names it)."""
    workers = workers_for(config, ranks)
    processes = workers * config.slots_per_worker
    launcher_volumes = pod_spec.scratch_volumes(config, size=LAUNCHER_SCRATCH_SIZE)
    worker_volumes = pod_spec.scratch_volumes(config)
    # The MPI Operator's launcher pod: the one that runs mpirun.
    launcher = _container(
        "launcher",
        config,
        args=pod_spec.cli_command(step, args, ranks=processes),
        resources=pod_spec.resources(config.launcher_resources, volumes=launcher_volumes),
        env_from=[env_from_attempt_secret()],
        extra_env={
            WORKERS_WAIT_VARIABLE: str(config.workers_wait_seconds),
            HYDRA_LAUNCHER_EXTRA_ARGS: SSH_EXTRA_ARGS,
        },
    )
    worker = _container(
        "worker",
        config,
        args=SSHD_COMMAND,
        resources=pod_spec.resources(
            config.worker_resources, volumes=worker_volumes, gpus=config.gpus_per_worker
        ),
        # Ready once sshd listens: what the launcher's creation waits for.
        readiness_probe=k8s.V1Probe(
            tcp_socket=k8s.V1TCPSocketAction(port=SSH_PORT),
            initial_delay_seconds=2,
            period_seconds=5,
        ),
    )
    run_policy: dict[str, Any] = {
        "cleanPodPolicy": config.clean_pod_policy,
        "backoffLimit": config.backoff_limit,
        "activeDeadlineSeconds": pod_spec.active_deadline_seconds(execution_timeout),
        "ttlSecondsAfterFinished": config.ttl_seconds_after_finished,
    }
    if gang := config.gang_scheduling:
        scheduling = {
            # The workers only: with WaitForWorkersReady the launcher is created once they run,
            # so a PodGroup waiting for it too would never start (mpi-operator#608).
            "minAvailable": workers,
            "queue": gang.queue,
            "priorityClass": gang.priority_class,
            "scheduleTimeoutSeconds": gang.schedule_timeout_seconds,
        }
        run_policy["schedulingPolicy"] = {k: v for k, v in scheduling.items() if v is not None}
    job_labels = pod_spec.labels(step.name)
    if config.kueue_queue:
        job_labels[KUEUE_QUEUE_LABEL] = config.kueue_queue
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"labels": job_labels},
        "spec": {
            "slotsPerWorker": config.slots_per_worker,
            "mpiImplementation": MPI_IMPLEMENTATION,
            "launcherCreationPolicy": "WaitForWorkersReady",
            "sshAuthMountPath": SSH_AUTH_MOUNT_PATH,
            "runPolicy": run_policy,
            "mpiReplicaSpecs": {
                "Launcher": _replica(
                    1,
                    f"{step.name}-launcher",
                    launcher,
                    config,
                    placement=config.launcher_placement,
                    volumes=launcher_volumes,
                ),
                "Worker": _replica(
                    workers,
                    f"{step.name}-worker",
                    worker,
                    config,
                    placement=config.workers_placement,
                    volumes=worker_volumes,
                ),
            },
        },
    }


def _container(
    name: str,
    config: KubernetesConfig,
    *,
    args: list[str],
    extra_env: dict[str, str] | None = None,
    **fields: Any,
) -> k8s.V1Container:
    env = {**pod_spec.env_vars(config), **(extra_env or {})}
    return k8s.V1Container(
        name=name,
        image=config.image,
        image_pull_policy=config.image_pull_policy,
        args=args,  # not `command`: the image's entrypoint stays in front (pod_spec.cli_command)
        env=[k8s.V1EnvVar(name=k, value=v) for k, v in env.items()],
        volume_mounts=pod_spec.scratch_mounts(),
        security_context=pod_spec.container_security_context(),
        **fields,
    )


def _replica(
    replicas: int,
    component: str,
    container: k8s.V1Container,
    config: KubernetesConfig,
    *,
    placement: Placement,
    volumes: list[k8s.V1Volume],
) -> dict[str, Any]:
    template = k8s.V1PodTemplateSpec(
        metadata=k8s.V1ObjectMeta(labels=pod_spec.labels(component)),
        spec=k8s.V1PodSpec(
            containers=[container],
            volumes=volumes,
            security_context=pod_spec.pod_security_context(),
            service_account_name=config.service_account,
            automount_service_account_token=False,
            node_selector=dict(placement.node_selector) or None,
            tolerations=pod_spec.tolerations(placement) or None,
        ),
    )
    return {
        "replicas": replicas,
        # A failed launcher pod is replaced by its Job (backoffLimit); a lost worker ends the
        # MPIJob (MPIJobEvicted) and the Airflow retry starts a fresh one.
        "restartPolicy": "Never",
        "template": ApiClient().sanitize_for_serialization(template),
    }
