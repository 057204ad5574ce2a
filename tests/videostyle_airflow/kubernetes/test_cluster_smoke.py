"""Opt-in, on a REAL cluster: the sample run's manifests pass the API server's own checks.

Each object `make k8s-manifests` writes is created with a server-side dry run, as `kubectl
apply --dry-run=server` does: admission, defaulting and validation run, nothing is stored.
Runs only when asked for (`pytest -m cluster`) with KUBECONFIG naming a kubeconfig file: the
test never falls back to ~/.kube/config. The cluster needs the MPI Operator's CRD and the
namespace the Kubernetes launcher is configured with (videostyle by default).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def kubeconfig(request: pytest.FixtureRequest) -> Path:
    if "cluster" not in (request.config.option.markexpr or ""):
        pytest.skip("a real cluster is opt-in: pytest -m cluster")
    if not os.environ.get("KUBECONFIG"):
        pytest.skip("set KUBECONFIG to the cluster's kubeconfig file")
    return Path(os.environ["KUBECONFIG"])


def test_the_sample_runs_manifests_pass_a_server_side_dry_run(
    kubeconfig: Path, tmp_path: Path
) -> None:
    from kubernetes import config, dynamic

    subprocess.run(
        [sys.executable, "-m", "videostyle_airflow.kubernetes.manifests", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    client = dynamic.DynamicClient(config.new_client_from_config(config_file=str(kubeconfig)))
    for path in sorted(tmp_path.glob("*.yaml")):
        obj = yaml.safe_load(path.read_text())
        resource = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        resource.create(body=obj, namespace=obj["metadata"]["namespace"], dry_run="All")
