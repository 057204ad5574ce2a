"""Everything the Kubernetes launcher can be told, in one typed object, from one Variable.

The Variable (or env AIRFLOW_VAR_VIDEOSTYLE_KUBERNETES) holds JSON; every field has a default,
so `{}` or no Variable at all is a working configuration for a cluster with the MPI Operator.
Example, spot GPU workers on AKS with the launcher and step pods on the on-demand pool:

    {"image": "myacr.azurecr.io/videostyle-worker:0.1.0", "gpus_per_worker": 1,
     "workers_placement": {"node_selector": {"kubernetes.azure.com/scalesetpriority": "spot"},
                           "tolerations": [{"key": "kubernetes.azure.com/scalesetpriority",
                                            "operator": "Equal", "value": "spot",
                                            "effect": "NoSchedule"}]},
     "kueue_queue": "gpu"}
"""

import re
from typing import Annotated, Literal, Self, get_args

from airflow.sdk import Variable
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from videostyle.steps.table import Store
from videostyle_airflow import credentials

KUBERNETES_VARIABLE = "VIDEOSTYLE_KUBERNETES"

# A Kubernetes resource quantity: 500m, 2, 1.5, 16Gi, 100M ...
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _quantity(value: str) -> str:
    if not _QUANTITY.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (like 500m, 2, 16Gi)")
    return value


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(f"{value!r} is not a DNS label (lowercase letters, digits, '-')")
    return value


Quantity = Annotated[str, AfterValidator(_quantity)]
DnsLabel = Annotated[str, AfterValidator(_dns_label)]
ResourceName = Literal["cpu", "memory", "ephemeral-storage"]


class _Model(BaseModel):
    # A misspelt field must fail loudly, not fall back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Toleration(_Model):
    """A core/v1 Toleration."""

    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class Placement(_Model):
    """Which nodes a kind of pod may run on."""

    node_selector: dict[str, str] = {}
    tolerations: tuple[Toleration, ...] = ()


class Resources(_Model):
    """A container's requests and limits, as in a pod spec (GPUs come from gpus_per_worker)."""

    requests: dict[ResourceName, Quantity]
    limits: dict[ResourceName, Quantity] = {}


class GangScheduling(_Model):
    """runPolicy.schedulingPolicy, for an MPI Operator started with --gang-scheduling=volcano
    (or scheduler-plugins)."""

    queue: str | None = None
    priority_class: str | None = None
    schedule_timeout_seconds: int | None = Field(default=None, gt=0)


class KubernetesConfig(_Model):
    """How the Kubernetes launcher runs the steps: preprocess, stitch, publish as pods, score as
    an MPIJob of `workers` pods with `gpus_per_worker` GPUs (MPI slots) each, plus a launcher."""

    kubernetes_conn_id: str = "kubernetes_default"
    namespace: DnsLabel = "videostyle"
    image: str = "videostyle-worker:0.1.0"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    # Pods never call the Kubernetes API, so none gets a token; the account is for what the
    # cluster attaches to it (image pull secrets, say). None: the namespace's default.
    service_account: str | None = None
    # Non-secret VIDEOSTYLE_* settings for every step, e.g. {"VIDEOSTYLE_PRECISION": "fp16"}.
    env: dict[str, str] = {}

    # Defaults fit the nodes docs/deployment.md recommends, after AKS's reservations and the
    # DaemonSets' share (tests/videostyle_airflow/kubernetes/test_node_fit.py): a pod that fits
    # no node stays Pending, and the autoscaler never scales a pool up for it. No CPU limit: a
    # pod alone on its node uses every core. ephemeral-storage, unless given, is what the pod's
    # emptyDirs may hold (pod_spec.resources).
    step_resources: Resources = Resources(
        requests={"cpu": "1", "memory": "4Gi"}, limits={"memory": "4Gi"}
    )
    # Scoring: None means one worker per rank the run asks for (its `ranks` param).
    workers: int | None = Field(default=None, ge=1)
    gpus_per_worker: int = Field(default=1, ge=0)
    worker_resources: Resources = Resources(
        requests={"cpu": "2", "memory": "16Gi"}, limits={"memory": "16Gi"}
    )
    launcher_resources: Resources = Resources(
        requests={"cpu": "250m", "memory": "512Mi"}, limits={"memory": "512Mi"}
    )
    # Workers may go to spot/low-priority nodes (a retry resumes what an eviction cut short);
    # the launcher and the step pods, which hold a run's progress, to on-demand nodes.
    workers_placement: Placement = Placement()
    launcher_placement: Placement = Placement()
    # The scratch of every step pod and worker (an emptyDir of this sizeLimit, requested as
    # ephemeral storage): the source video and the units pass through it.
    scratch_size: Quantity = "50Gi"

    # Gang scheduling: a Kueue LocalQueue (label kueue.x-k8s.io/queue-name), or the operator's
    # own PodGroups (Volcano, scheduler-plugins); not both.
    kueue_queue: str | None = None
    gang_scheduling: GangScheduling | None = None
    # Running: pods are deleted as soon as the MPIJob ends; All: finished ones too.
    clean_pod_policy: Literal["Running", "All"] = "Running"
    # Launcher retries inside one MPIJob (a worker whose DNS or sshd lags); evictions and
    # deadlines end the MPIJob whatever this is, and the Airflow retry takes over.
    backoff_limit: int = Field(default=2, ge=0)
    # A backstop for MPIJobs the operator could not delete itself.
    ttl_seconds_after_finished: int = Field(default=3600, ge=0)

    # A step pod, or an MPIJob, not Running this long after creation ends the try as a retry:
    # a CUDA image pull plus a GPU node scaled up from zero take minutes.
    startup_timeout_seconds: int = Field(default=600, gt=0)
    # How long the launcher waits for every worker's name to resolve before starting mpirun
    # (images/worker/entrypoint.sh): as long as a spot GPU node takes to arrive and pull the
    # image.
    workers_wait_seconds: int = Field(default=900, gt=0)
    # A worker pod missing, or not Ready, this long while the launcher runs (a spot node taken
    # away) ends the try as a retry, and the MPIJob is deleted so that it holds no other GPU.
    worker_lost_seconds: int = Field(default=180, gt=0)
    poll_interval_seconds: float = Field(default=10.0, gt=0)
    deferrable: bool = True

    @field_validator("env")
    @classmethod
    def _env_holds_no_launcher_variable(cls, env: dict[str, str]) -> dict[str, str]:
        # Credentials go in a try's Secret only; and a pod's env would override the Secret's.
        reserved = credentials.AMBIENT_CREDENTIAL_VARIABLES | {
            credentials.url_variable(store) for store in get_args(Store)
        }
        if taken := sorted(set(env) & reserved):
            raise ValueError(f"env cannot set {', '.join(taken)}: each try's Secret does")
        return env

    @model_validator(mode="after")
    def _one_gang_scheduler(self) -> Self:
        if self.kueue_queue and self.gang_scheduling:
            raise ValueError("kueue_queue and gang_scheduling exclude each other: pick one")
        return self

    @property
    def slots_per_worker(self) -> int:
        """MPI processes per worker: one per GPU, or one on a CPU-only worker."""
        return max(self.gpus_per_worker, 1)


def load_kubernetes_config() -> KubernetesConfig:
    """The Variable VIDEOSTYLE_KUBERNETES (JSON), validated; the defaults when it is unset."""
    return KubernetesConfig.model_validate(
        Variable.get(KUBERNETES_VARIABLE, default={}, deserialize_json=True)
    )
