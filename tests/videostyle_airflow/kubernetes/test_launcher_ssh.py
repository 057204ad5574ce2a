"""What the MPIJob's launcher tells Hydra (mpirun) and the image's entrypoint, checked against
the real programs: MPICH's Hydra from the pinned `mpich` wheel, and images/worker/entrypoint.sh.

The MPI Operator sets HYDRA_LAUNCH_EXTRA_ARGS on an MPICH launcher; the Hydra of MPICH 4 and
later reads HYDRA_LAUNCHER_EXTRA_ARGS. Hydra here runs a stand-in for ssh that records its
arguments, with the launcher's environment as the MPIJob renders it plus the operator's.
"""

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from videostyle.steps.table import STEPS
from videostyle_airflow.kubernetes.config import KubernetesConfig
from videostyle_airflow.kubernetes.mpijob_spec import (
    HYDRA_LAUNCHER_EXTRA_ARGS,
    WORKERS_WAIT_VARIABLE,
    mpijob_body,
)

ROOT = Path(__file__).resolve().parents[3]
ENTRYPOINT = ROOT / "images" / "worker" / "entrypoint.sh"
MPIEXEC = Path(sys.executable).parent / "mpiexec"
# What mpi-operator v2beta1's controller appends to an MPICH launcher's env.
OPERATOR_ENV = {"HYDRA_LAUNCH_EXTRA_ARGS": "-o ConnectionAttempts=10"}


def _launcher_env(config: KubernetesConfig) -> dict[str, str]:
    job = mpijob_body(
        config,
        step=STEPS["score"],
        args=["--job", "j"],
        ranks=2,
        execution_timeout=timedelta(hours=4),
    )
    spec: dict[str, Any] = job["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]
    (container,) = spec["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def _ssh_arguments_hydra_passes(env: dict[str, str], tmp_path: Path) -> list[str]:
    """The arguments Hydra gives ssh to start its proxy on a worker, under `env`."""
    record = tmp_path / "ssh-arguments"
    fake_ssh = tmp_path / "ssh"
    fake_ssh.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\nexit 1\n')
    fake_ssh.chmod(0o755)
    launch = ["-launcher", "ssh", "-launcher-exec", str(fake_ssh)]
    subprocess.run(
        [str(MPIEXEC), *launch, "-hosts", "score-worker-0.invalid", "-n", "1", "true"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        timeout=60,
        check=False,  # the stand-in fails the launch: its arguments are all that is wanted
    )
    return record.read_text().splitlines()


def test_hydra_gives_ssh_the_options_the_mpijob_sets(tmp_path: Path) -> None:
    env = _launcher_env(KubernetesConfig())
    arguments = _ssh_arguments_hydra_passes({**env, **OPERATOR_ENV}, tmp_path)

    extra = env[HYDRA_LAUNCHER_EXTRA_ARGS].split()
    assert extra == ["-o", "ConnectionAttempts=10"]
    start = arguments.index(extra[0])
    assert arguments[start : start + len(extra)] == extra
    assert arguments.count("ConnectionAttempts=10") == 1  # the operator's is not read


def test_the_operators_own_variable_reaches_no_ssh(tmp_path: Path) -> None:
    # Why leaving the operator's HYDRA_LAUNCH_EXTRA_ARGS in place does no harm: nothing reads it.
    arguments = _ssh_arguments_hydra_passes({"HYDRA_LAUNCH_EXTRA_ARGS": "-o Marker=1"}, tmp_path)
    assert arguments
    assert "Marker=1" not in arguments


def test_the_launcher_waits_for_workers_as_configured() -> None:
    assert _launcher_env(KubernetesConfig(workers_wait_seconds=1800))[WORKERS_WAIT_VARIABLE] == (
        "1800"
    )
    # The entrypoint's own default (a launcher pod without the variable) is the config's.
    default = re.search(rf"\${{{WORKERS_WAIT_VARIABLE}:-(\d+)}}", ENTRYPOINT.read_text())
    assert default
    assert int(default.group(1)) == KubernetesConfig().workers_wait_seconds
