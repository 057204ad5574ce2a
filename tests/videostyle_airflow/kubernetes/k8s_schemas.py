"""What the API server would check of a manifest, as far as it can be checked with no cluster.

- Core objects (Pod, Secret): the official OpenAPI schemas for Kubernetes 1.36 (the version
  of the `kubernetes` client 36 the provider pins), strict: unknown fields are errors
  (`kubernetes-validate`).
- MPIJobs: the CRD's openAPIV3Schema (kubeflow.org_mpijobs.yaml beside this file), unknown
  fields made errors as the API server's strict field validation makes them; plus the MPI
  Operator's own validation (pkg/apis/kubeflow/validation), whose rules the schema does not
  carry (value sets, the launcher's single replica, worker hostnames as DNS labels); plus each
  replica's pod template checked as a Pod against the official schema.
"""

import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.36"
MPIJOB_CRD = Path(__file__).with_name("kubeflow.org_mpijobs.yaml")
# The CRD leaves metadata to the API server, which reads it as an ObjectMeta; these are the
# fields a manifest may set.
OBJECT_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}
CLEAN_POD_POLICIES = {"None", "Running", "All"}
MPI_IMPLEMENTATIONS = {"OpenMPI", "Intel", "MPICH"}
LAUNCHER_CREATION_POLICIES = {"AtStartup", "WaitForWorkersReady"}
REPLICA_RESTART_POLICIES = {"Never", "OnFailure"}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class ManifestError(AssertionError):
    """A manifest the API server (or the MPI Operator) would refuse."""


def validate_core(obj: dict[str, Any]) -> None:
    """Strict validation against the official schema of `obj`'s kind."""
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise ManifestError(f"{obj['kind']} at {where}: {exc.message}") from exc


def validate_mpijob(obj: dict[str, Any]) -> None:
    """The CRD's schema with unknown fields rejected, then the MPI Operator's own rules."""
    errors = sorted(_mpijob_validator().iter_errors(obj), key=lambda e: list(e.path))
    if errors:
        raise ManifestError("; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors))
    problems = _mpijob_rule_problems(obj)
    if problems:
        raise ManifestError("; ".join(problems))
    for role, replica in obj["spec"]["mpiReplicaSpecs"].items():
        template = replica["template"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{role.lower()}", **template.get("metadata", {})},
            "spec": template["spec"],
        }
        validate_core(pod)


@cache
def _mpijob_validator() -> jsonschema.Draft202012Validator:
    crd = yaml.safe_load(MPIJOB_CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v2beta1"]
    schema = _closed(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = OBJECT_META
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    return jsonschema.Draft202012Validator(schema)


def _closed(node: Any) -> Any:
    """The schema with every object that lists its properties closed to others."""
    if isinstance(node, dict):
        closed = {key: _closed(value) for key, value in node.items()}
        if "properties" in closed and "additionalProperties" not in closed:
            closed["additionalProperties"] = False
        return closed
    if isinstance(node, list):
        return [_closed(item) for item in node]
    return node


def _mpijob_rule_problems(obj: dict[str, Any]) -> list[str]:
    spec = obj["spec"]
    problems = []

    def check(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    run_policy = spec.get("runPolicy", {})
    check(
        run_policy.get("cleanPodPolicy") in CLEAN_POD_POLICIES,
        f"runPolicy.cleanPodPolicy must be one of {sorted(CLEAN_POD_POLICIES)}",
    )
    for field in ("activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"):
        check(run_policy.get(field, 0) >= 0, f"runPolicy.{field} must not be negative")
    check(spec.get("slotsPerWorker", 1) >= 1, "slotsPerWorker must be at least 1")
    check(
        spec.get("mpiImplementation", "OpenMPI") in MPI_IMPLEMENTATIONS,
        f"mpiImplementation must be one of {sorted(MPI_IMPLEMENTATIONS)}",
    )
    check(
        spec.get("launcherCreationPolicy", "AtStartup") in LAUNCHER_CREATION_POLICIES,
        f"launcherCreationPolicy must be one of {sorted(LAUNCHER_CREATION_POLICIES)}",
    )
    replicas = spec["mpiReplicaSpecs"]
    check(set(replicas) <= {"Launcher", "Worker"}, "mpiReplicaSpecs: Launcher and Worker only")
    check(replicas.get("Launcher", {}).get("replicas") == 1, "the Launcher needs replicas: 1")
    for role, replica in replicas.items():
        check(replica.get("replicas", 0) >= 1, f"{role} needs at least one replica")
        check(
            replica.get("restartPolicy", "Never") in REPLICA_RESTART_POLICIES,
            f"{role}.restartPolicy must be one of {sorted(REPLICA_RESTART_POLICIES)}",
        )
        check(bool(replica["template"]["spec"].get("containers")), f"{role} needs a container")
    workers = replicas.get("Worker", {}).get("replicas", 1)
    hostname = f"{obj['metadata'].get('name', '')}-worker-{workers - 1}"
    check(
        len(hostname) <= 63 and bool(_DNS_LABEL.match(hostname)),
        f"worker hostname {hostname!r} is no DNS label",
    )
    return problems
