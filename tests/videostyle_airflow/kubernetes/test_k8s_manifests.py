"""`make k8s-manifests`: a sample run's objects, each as the API server would accept it.

The target runs for real, configured through the Variable as in production (spot workers,
an on-demand launcher, a Kueue queue, two GPUs per worker); every file it writes is then
checked: Pods and Secrets strictly against the official Kubernetes 1.36 schema, the MPIJob
against its CRD with unknown fields rejected and the MPI Operator's rules (k8s_schemas.py).
"""

import copy
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.utils.quantity import parse_quantity

from tests.videostyle_airflow.kubernetes.k8s_schemas import (
    ManifestError,
    validate_core,
    validate_mpijob,
)
from videostyle_airflow import credentials
from videostyle_airflow.kubernetes.mpijob_spec import (
    HYDRA_LAUNCHER_EXTRA_ARGS,
    KUEUE_QUEUE_LABEL,
    WORKERS_WAIT_VARIABLE,
)
from videostyle_airflow.kubernetes.pod_spec import IMAGE_USER_ID

ROOT = Path(__file__).resolve().parents[3]
CONFIG: dict[str, Any] = {
    "image": "registry.example/videostyle-worker:0.1.0",
    "service_account": "videostyle-steps",
    "gpus_per_worker": 2,
    "workers": 3,
    "env": {"VIDEOSTYLE_PRECISION": "fp16"},
    "workers_placement": {
        "node_selector": {"kubernetes.azure.com/scalesetpriority": "spot"},
        "tolerations": [
            {
                "key": "kubernetes.azure.com/scalesetpriority",
                "operator": "Equal",
                "value": "spot",
                "effect": "NoSchedule",
            }
        ],
    },
    "launcher_placement": {"node_selector": {"agentpool": "system"}},
    "kueue_queue": "gpu",
    "workers_wait_seconds": 1200,
}
FILES = [
    "00-preprocess-secret.yaml",
    "01-preprocess-pod.yaml",
    "02-score-secret.yaml",
    "03-score-mpijob.yaml",
    "04-stitch-secret.yaml",
    "05-stitch-pod.yaml",
    "06-publish-secret.yaml",
    "07-publish-pod.yaml",
]
SCORE_TIMEOUT_S = 4 * 3600  # the process DAG's score execution_timeout


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder `make k8s-manifests OUT=...` wrote (its venv taken as up to date)."""
    out = tmp_path_factory.mktemp("manifests")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW_VAR_", "AIRFLOW_CONN_"))
    }
    env["AIRFLOW_VAR_VIDEOSTYLE_KUBERNETES"] = json.dumps(CONFIG)
    subprocess.run(
        ["make", "--old-file=.venv/bin/.installed", "k8s-manifests", f"OUT={out}"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


@pytest.fixture(scope="module")
def objects(out: Path) -> dict[str, dict[str, Any]]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(out.glob("*.yaml"))}


def pods_of(objects: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [obj for obj in objects.values() if obj["kind"] == "Pod"]


def mpijob_of(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (mpijob,) = [obj for obj in objects.values() if obj["kind"] == "MPIJob"]
    return mpijob


def test_the_target_writes_one_file_per_object(out: Path) -> None:
    assert sorted(path.name for path in out.iterdir()) == FILES


def test_every_pod_and_secret_is_valid_kubernetes_1_36_strictly(
    objects: dict[str, dict[str, Any]],
) -> None:
    checked = [obj for obj in objects.values() if obj["kind"] != "MPIJob"]
    for obj in checked:
        validate_core(obj)
    assert len(checked) == 7


def test_the_mpijob_is_valid_against_its_crd_strictly(objects: dict[str, dict[str, Any]]) -> None:
    validate_mpijob(mpijob_of(objects))


def _unknown_container_field(obj: dict[str, Any]) -> None:
    obj["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True


def _wrong_type(obj: dict[str, Any]) -> None:
    obj["spec"]["securityContext"]["runAsUser"] = "mpiuser"


def _unknown_run_policy_field(obj: dict[str, Any]) -> None:
    obj["spec"]["runPolicy"]["cleanupPolicy"] = "All"


def _unknown_clean_pod_policy(obj: dict[str, Any]) -> None:
    obj["spec"]["runPolicy"]["cleanPodPolicy"] = "Finished"


def _two_launchers(obj: dict[str, Any]) -> None:
    obj["spec"]["mpiReplicaSpecs"]["Launcher"]["replicas"] = 2


def _unknown_field_in_a_worker_pod(obj: dict[str, Any]) -> None:
    obj["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["gpus"] = 2


def _unknown_secret_field(obj: dict[str, Any]) -> None:
    obj["stringdata"] = obj.pop("stringData")


@pytest.mark.parametrize(
    ("file", "breakage"),
    [
        ("01-preprocess-pod.yaml", _unknown_container_field),
        ("05-stitch-pod.yaml", _wrong_type),
        ("00-preprocess-secret.yaml", _unknown_secret_field),
        ("03-score-mpijob.yaml", _unknown_run_policy_field),
        ("03-score-mpijob.yaml", _unknown_clean_pod_policy),
        ("03-score-mpijob.yaml", _two_launchers),
        ("03-score-mpijob.yaml", _unknown_field_in_a_worker_pod),
    ],
)
def test_a_broken_manifest_fails_its_check(
    objects: dict[str, dict[str, Any]], file: str, breakage: Callable[[dict[str, Any]], None]
) -> None:
    broken = copy.deepcopy(objects[file])
    breakage(broken)
    check = validate_mpijob if broken["kind"] == "MPIJob" else validate_core
    with pytest.raises(ManifestError):
        check(broken)


def test_secrets_hold_placeholders_never_credentials(objects: dict[str, dict[str, Any]]) -> None:
    secrets = {name: obj for name, obj in objects.items() if obj["kind"] == "Secret"}
    for name, secret in secrets.items():
        step = name.split("-")[1]
        assert list(secret["stringData"]) == credentials.storage_env_names(step)
        for value in secret["stringData"].values():
            assert not any(mark in value for mark in ("sig=", "AccountKey", "SharedAccess"))


def _pod_specs(objects: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    replicas = mpijob_of(objects)["spec"]["mpiReplicaSpecs"].values()
    return [pod["spec"] for pod in pods_of(objects)] + [r["template"]["spec"] for r in replicas]


def test_every_pod_runs_locked_down(objects: dict[str, dict[str, Any]]) -> None:
    specs = _pod_specs(objects)
    assert len(specs) == 5
    for spec in specs:
        assert spec["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": IMAGE_USER_ID,
            "runAsGroup": IMAGE_USER_ID,
            "fsGroup": IMAGE_USER_ID,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert spec["automountServiceAccountToken"] is False
        assert spec["serviceAccountName"] == "videostyle-steps"
        (container,) = spec["containers"]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        # Writable: the scratch and /tmp emptyDirs, nothing else.
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts == {"/scratch": "scratch", "/tmp": "tmp"}
        assert {v["name"] for v in spec["volumes"] if "emptyDir" in v} == {"scratch", "tmp"}
        assert {"name": "VIDEOSTYLE_PRECISION", "value": "fp16"} in container["env"]


def test_only_the_tries_secrets_carry_storage_credentials(
    objects: dict[str, dict[str, Any]],
) -> None:
    secret_names = {obj["metadata"]["name"] for obj in objects.values() if obj["kind"] == "Secret"}
    referenced = set()
    for spec in _pod_specs(objects):
        (container,) = spec["containers"]
        referenced |= {e["secretRef"]["name"] for e in container.get("envFrom", [])}
        assert not any("CONNECTION_STRING" in e["name"] for e in container["env"])
    assert referenced == secret_names


def test_step_pods_run_the_cli_on_the_on_demand_pool(objects: dict[str, dict[str, Any]]) -> None:
    pods = {
        pod["metadata"]["labels"]["app.kubernetes.io/component"]: pod for pod in pods_of(objects)
    }
    assert set(pods) == {"preprocess", "stitch", "publish"}
    for step, pod in pods.items():
        (container,) = pod["spec"]["containers"]
        assert container["args"][:4] == ["python", "-m", "videostyle", step]
        assert container["image"] == CONFIG["image"]
        assert pod["spec"]["nodeSelector"] == {"agentpool": "system"}
        assert pod["spec"]["activeDeadlineSeconds"] < 30 * 60  # under execution_timeout
    assert pods["preprocess"]["spec"]["containers"][0]["args"][-2:] == ["--", "sample.mp4"]


def test_the_mpijob_gangs_gpu_workers_on_spot_behind_an_on_demand_launcher(
    objects: dict[str, dict[str, Any]],
) -> None:
    mpijob = mpijob_of(objects)
    spec = mpijob["spec"]
    assert mpijob["metadata"]["labels"][KUEUE_QUEUE_LABEL] == "gpu"
    assert spec["mpiImplementation"] == "MPICH"
    assert spec["launcherCreationPolicy"] == "WaitForWorkersReady"
    assert spec["slotsPerWorker"] == 2
    assert spec["runPolicy"]["cleanPodPolicy"] == "Running"
    assert 0 < spec["runPolicy"]["activeDeadlineSeconds"] < SCORE_TIMEOUT_S
    launcher = spec["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]
    worker = spec["mpiReplicaSpecs"]["Worker"]
    assert worker["replicas"] == 3
    (launch,) = launcher["containers"]
    assert launch["args"][:3] == ["mpirun", "-n", "6"]  # 3 workers x 2 slots
    assert launch["args"][3:10] == ["python", "-m", "mpi4py", "-m", "videostyle", "score", "--job"]
    assert "nvidia.com/gpu" not in launch["resources"].get("limits", {})
    assert launcher["nodeSelector"] == {"agentpool": "system"}
    assert "tolerations" not in launcher
    (sshd,) = worker["template"]["spec"]["containers"]
    assert sshd["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert sshd["readinessProbe"]["tcpSocket"]["port"] == 2222
    assert worker["template"]["spec"]["nodeSelector"] == {
        "kubernetes.azure.com/scalesetpriority": "spot"
    }
    assert worker["template"]["spec"]["tolerations"] == CONFIG["workers_placement"]["tolerations"]


def test_every_pod_requests_the_disk_its_emptydirs_may_fill(
    objects: dict[str, dict[str, Any]],
) -> None:
    for spec in _pod_specs(objects):
        (container,) = spec["containers"]
        empty_dirs = [v["emptyDir"] for v in spec["volumes"] if "emptyDir" in v]
        assert all("sizeLimit" in empty_dir for empty_dir in empty_dirs)
        request = container["resources"]["requests"]["ephemeral-storage"]
        assert parse_quantity(request) == sum(parse_quantity(e["sizeLimit"]) for e in empty_dirs)


def test_the_launcher_waits_for_the_workers_as_configured(
    objects: dict[str, dict[str, Any]],
) -> None:
    replicas = mpijob_of(objects)["spec"]["mpiReplicaSpecs"]
    (launch,) = replicas["Launcher"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in launch["env"]}
    assert env[WORKERS_WAIT_VARIABLE] == str(CONFIG["workers_wait_seconds"])
    # The name MPICH's Hydra reads (test_launcher_ssh.py), not the operator's older one.
    assert env[HYDRA_LAUNCHER_EXTRA_ARGS] == "-o ConnectionAttempts=10"
    (sshd,) = replicas["Worker"]["template"]["spec"]["containers"]
    assert WORKERS_WAIT_VARIABLE not in {e["name"] for e in sshd["env"]}
