"""The default requests fit the nodes docs/deployment.md recommends.

A pod whose requests exceed every node's allocatable resources stays Pending, and the cluster
autoscaler never scales a pool up from zero for it. ALLOCATABLE is AKS's arithmetic for those
VM sizes (written out in the guide, recomputed here from AKS's published rules); every pod the
Kubernetes launcher renders with the default configuration must fit its nodes with room left for
the DaemonSets. The guide's GPU check pod requests what a worker requests, read from the guide.
"""

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from kubernetes.client import ApiClient
from kubernetes.utils.quantity import parse_quantity

from videostyle.steps.table import STEPS
from videostyle_airflow.kubernetes.config import KubernetesConfig, Resources
from videostyle_airflow.kubernetes.mpijob_spec import mpijob_body
from videostyle_airflow.kubernetes.pod_spec import step_pod_arguments

ROOT = Path(__file__).resolve().parents[3]
GUIDE = ROOT / "docs" / "deployment.md"
GIB = 2**30
MIB = 2**20


class Node(NamedTuple):
    cpu_m: int  # millicores
    memory_mi: int  # MiB
    ephemeral_gi: int  # GiB


# Allocatable = capacity - AKS's kube-reserved - the kubelet's eviction threshold (AKS 1.29+).
# CPU: 140m reserved at 4 cores, 180m at 8 (and 6), 260m at 16, 420m at 32 (and 24).
# Memory: min(20 MiB x 250 max pods + 50 MiB, 25% of memory) + 100 MiB (memory.available).
# Ephemeral storage: a 128 GiB OS disk's ~124 GiB root file system, less nodefs.available<10%.
ALLOCATABLE = {
    "Standard_D4s_v5": Node(cpu_m=3860, memory_mi=12188, ephemeral_gi=111),
    "Standard_NC4as_T4_v3": Node(cpu_m=3860, memory_mi=23522, ephemeral_gi=111),
    "Standard_NC8as_T4_v3": Node(cpu_m=7820, memory_mi=52194, ephemeral_gi=111),
    "Standard_NC16as_T4_v3": Node(cpu_m=15740, memory_mi=107490, ephemeral_gi=111),
    "Standard_NC6s_v3": Node(cpu_m=5820, memory_mi=109538, ephemeral_gi=111),
    "Standard_NC24ads_A100_v4": Node(cpu_m=23580, memory_mi=220130, ephemeral_gi=111),
}
# vCPUs and GiB of memory, as Azure sizes them.
CAPACITY = {
    "Standard_D4s_v5": (4, 16),
    "Standard_NC4as_T4_v3": (4, 28),
    "Standard_NC8as_T4_v3": (8, 56),
    "Standard_NC16as_T4_v3": (16, 110),
    "Standard_NC6s_v3": (6, 112),
    "Standard_NC24ads_A100_v4": (24, 220),
}
CPU_NODES = ["Standard_D4s_v5"]  # the system pool: Airflow, the launchers, the step pods
GPU_NODES = [name for name in ALLOCATABLE if name not in CPU_NODES]
# What our pod cannot have of a node's allocatable: the DaemonSets' requests (kube-proxy, CNI,
# CSI drivers, monitoring agents), the kernel's share of the VM's memory, the node's images.
OTHERS = Node(cpu_m=1000, memory_mi=2048, ephemeral_gi=20)


def _aks_allocatable(vcpus: int, memory_gib: int) -> Node:
    """AKS's published reservation rules, applied."""
    reserved_cpu = {1: 60, 2: 100, 4: 140, 8: 180, 16: 260, 32: 420, 64: 740}
    step = min(cores for cores in reserved_cpu if cores >= vcpus)
    memory_mi = memory_gib * 1024
    kube_reserved_mi = min(20 * 250 + 50, memory_mi // 4)
    return Node(
        cpu_m=vcpus * 1000 - reserved_cpu[step],
        memory_mi=memory_mi - kube_reserved_mi - 100,
        ephemeral_gi=int(124 * 0.9),
    )


def _pod_specs(config: KubernetesConfig) -> dict[str, dict[str, Any]]:
    """The pod specs the launcher renders with `config`: a worker, the launcher, a step pod."""
    job = mpijob_body(
        config,
        step=STEPS["score"],
        args=["--job", "j"],
        ranks=2,
        execution_timeout=timedelta(hours=4),
    )
    replicas = job["spec"]["mpiReplicaSpecs"]
    step = step_pod_arguments(config, "preprocess")
    serialize = ApiClient().sanitize_for_serialization
    return {
        "worker": replicas["Worker"]["template"]["spec"],
        "launcher": replicas["Launcher"]["template"]["spec"],
        "step": {
            "containers": [{"resources": serialize(step["container_resources"])}],
            "volumes": serialize(step["volumes"]),
        },
    }


def _requests(spec: dict[str, Any]) -> dict[str, Decimal]:
    (container,) = spec["containers"]
    return {name: parse_quantity(q) for name, q in container["resources"]["requests"].items()}


@pytest.mark.parametrize("name", list(ALLOCATABLE))
def test_the_allocatable_table_is_aks_arithmetic(name: str) -> None:
    assert ALLOCATABLE[name] == _aks_allocatable(*CAPACITY[name])


@pytest.mark.parametrize("name", list(ALLOCATABLE))
def test_the_guide_shows_the_same_allocatable_resources(name: str) -> None:
    (row,) = [line for line in GUIDE.read_text().splitlines() if line.startswith(f"| `{name}` |")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    node = ALLOCATABLE[name]
    assert cells[-2] == f"{node.cpu_m:,}m"
    assert cells[-1].startswith(f"{node.memory_mi:,} MiB")


@pytest.mark.parametrize(
    ("pod", "node"),
    [("worker", node) for node in GPU_NODES]
    + [(pod, node) for pod in ("launcher", "step") for node in CPU_NODES],
)
def test_every_default_request_fits_its_nodes_beside_the_daemonsets(pod: str, node: str) -> None:
    requests = _requests(_pod_specs(KubernetesConfig())[pod])
    free = ALLOCATABLE[node]
    assert set(requests) == {"cpu", "memory", "ephemeral-storage"}
    assert requests["cpu"] * 1000 + OTHERS.cpu_m <= free.cpu_m
    assert requests["memory"] + OTHERS.memory_mi * MIB <= free.memory_mi * MIB
    assert requests["ephemeral-storage"] + OTHERS.ephemeral_gi * GIB <= free.ephemeral_gi * GIB


@pytest.mark.parametrize("pod", ["worker", "launcher", "step"])
@pytest.mark.parametrize("scratch", ["50Gi", "20Gi", "500Mi"])
def test_a_pod_requests_the_disk_its_emptydirs_may_fill(pod: str, scratch: str) -> None:
    spec = _pod_specs(KubernetesConfig(scratch_size=scratch))[pod]
    limits = [
        parse_quantity(volume["emptyDir"]["sizeLimit"])
        for volume in spec["volumes"]
        if "emptyDir" in volume
    ]
    assert len(limits) == 2  # scratch and /tmp, each bounded
    assert _requests(spec)["ephemeral-storage"] == sum(limits)


def test_an_ephemeral_storage_request_given_is_kept() -> None:
    resources = Resources(requests={"cpu": "1", "memory": "1Gi", "ephemeral-storage": "80Gi"})
    config = KubernetesConfig(step_resources=resources, worker_resources=resources)
    for pod in ("worker", "step"):
        assert _requests(_pod_specs(config)[pod])["ephemeral-storage"] == 80 * GIB


def _guide_gpu_check_pod() -> dict[str, Any]:
    """The GPU check pod of the guide's `kubectl apply -f - <<EOF ... EOF`."""
    match = re.search(r"kubectl apply -f - <<EOF\n(.*?)\nEOF\n", GUIDE.read_text(), re.DOTALL)
    assert match, "the guide's GPU check is gone"
    pod: dict[str, Any] = yaml.safe_load(match.group(1))
    assert pod["metadata"]["name"] == "gpu-check"
    return pod


def test_the_guides_gpu_check_pod_requests_what_a_worker_requests() -> None:
    (check,) = _guide_gpu_check_pod()["spec"]["containers"]
    (worker,) = _pod_specs(KubernetesConfig())["worker"]["containers"]

    def normal(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Decimal]]:
        return {
            kind: {name: parse_quantity(str(q)) for name, q in amounts.items()}
            for kind, amounts in resources.items()
        }

    assert normal(check["resources"]) == normal(worker["resources"])
