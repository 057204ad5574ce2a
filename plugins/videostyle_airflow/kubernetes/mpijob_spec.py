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
    # The MPI Operator's launcher pod: the one that runs mpirun.
    launcher = _container(
        "launcher",
        config,
        args=pod_spec.cli_command(step, args, ranks=processes),
        resources=pod_spec.resources(config.launcher_resources),
        env_from=[env_from_attempt_secret()],
    )
    worker = _container(
        "worker",
        config,
        args=SSHD_COMMAND,
        resources=pod_spec.resources(config.worker_resources, gpus=config.gpus_per_worker),
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
                    1, f"{step.name}-launcher", launcher, config, config.launcher_placement
                ),
                "Worker": _replica(
                    workers, f"{step.name}-worker", worker, config, config.workers_placement
                ),
            },
        },
    }


def _container(
    name: str, config: KubernetesConfig, *, args: list[str], **fields: Any
) -> k8s.V1Container:
    return k8s.V1Container(
        name=name,
        image=config.image,
        image_pull_policy=config.image_pull_policy,
        args=args,  # not `command`: the image's entrypoint stays in front (pod_spec.cli_command)
        env=[k8s.V1EnvVar(name=k, value=v) for k, v in pod_spec.env_vars(config).items()],
        volume_mounts=pod_spec.scratch_mounts(),
        security_context=pod_spec.container_security_context(),
        **fields,
    )


def _replica(
    replicas: int,
    component: str,
    container: k8s.V1Container,
    config: KubernetesConfig,
    placement: Placement,
) -> dict[str, Any]:
    template = k8s.V1PodTemplateSpec(
        metadata=k8s.V1ObjectMeta(labels=pod_spec.labels(component)),
        spec=k8s.V1PodSpec(
            containers=[container],
            volumes=pod_spec.scratch_volumes(config),
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
