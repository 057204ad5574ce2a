"""docker-compose.yaml, checked without a Docker engine: the Compose specification's schema, the
services and how they wait for each other, what they build, and the one credential in it (the
storage connection) working against a real Azurite."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.storage.blob import BlobServiceClient

from tests.images.dockerfile import ROOT, instructions, stages
from videostyle_airflow.config import SCORING_POOL

COMPOSE = ROOT / "docker-compose.yaml"
BIN = Path(sys.executable).parent
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
}
ONE_SHOT = {"airflow-init", "blob-init"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_compose_file_follows_the_compose_specification() -> None:
    result = _check_jsonschema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(
        "services:\n  a:\n    image: x\n    depends_on:\n      b: {condition: when_ready}\n"
    )
    assert _check_jsonschema(broken).returncode != 0


def test_stack_is_airflow_3_on_postgres_with_azurite(services: dict[str, Any]) -> None:
    assert set(services) == AIRFLOW_SERVICES | {"postgres", "azurite", "blob-init"}
    commands = {name: services[name].get("command") for name in AIRFLOW_SERVICES}
    assert commands == {
        "airflow-init": ["pools", "set", SCORING_POOL, "1", "videostyle scoring jobs at once"],
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        # deferrable sensors wait here
        "airflow-triggerer": "triggerer",
    }
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW_VAR_VIDEOSTYLE_LAUNCHER"] == "local"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:")
    assert services["airflow-init"]["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    # One image and one configuration file for every Airflow component.
    assert len({json.dumps(services[name]["build"]) for name in AIRFLOW_SERVICES}) == 1
    assert all(
        "airflow-config:/opt/airflow/config" in services[name]["volumes"]
        for name in AIRFLOW_SERVICES
    )


def test_long_running_services_are_health_checked_and_restarted(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name in ONE_SHOT:
            assert "restart" not in service, name
        else:
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
            assert service["restart"] == "always", name


def test_services_wait_for_what_they_need(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for needed, how in service.get("depends_on", {}).items():
            assert needed in services, f"{name} waits for unknown {needed}"
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[needed], f"{needed} has no healthcheck"
            else:
                assert how["condition"] == "service_completed_successfully"
                assert needed in ONE_SHOT
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert services[name]["depends_on"]["airflow-init"]["condition"].endswith("successfully")
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # The sensor and the claims need the containers; tasks need the execution API.
    for name in ("airflow-scheduler", "airflow-triggerer"):
        assert set(services[name]["depends_on"]) >= {"blob-init", "airflow-apiserver"}
    assert services["blob-init"]["depends_on"]["azurite"]["condition"] == "service_healthy"


def test_blob_init_runs_the_script_the_airflow_image_carries(services: dict[str, Any]) -> None:
    copies = [
        i.args.split()
        for i in instructions(ROOT / "images" / "airflow" / "Dockerfile")
        if i.keyword == "COPY"
    ]
    assert ["images/airflow/create_containers.py", "/opt/airflow/scripts/"] in copies
    assert services["blob-init"]["command"] == [
        "python",
        "/opt/airflow/scripts/create_containers.py",
    ]


def test_builds_use_existing_dockerfiles_and_targets(services: dict[str, Any]) -> None:
    builds = [service["build"] for service in services.values() if "build" in service]
    assert builds
    for build in builds:
        context = ROOT / build["context"]
        dockerfile = context / build["dockerfile"]
        assert context.is_dir()
        assert dockerfile.is_file()
        assert build["target"] in stages(dockerfile)


def test_azurite_is_the_version_and_flags_the_suite_uses(services: dict[str, Any]) -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["azurite"]
    azurite = services["azurite"]
    assert azurite["image"] == f"mcr.microsoft.com/azure-storage/azurite:{pinned}"
    flags = azurite["command"].split()
    assert {"--loose", "--skipApiVersionCheck", "--disableTelemetry"} <= set(flags)
    # Listening on the stack's network, so the other services reach it...
    assert flags[flags.index("--blobHost") + 1] == "0.0.0.0"  # noqa: S104
    # ...and published on this machine's loopback only.
    assert azurite["ports"] == ["127.0.0.1:10000:10000"]


def _blob_connection_string(services: dict[str, Any]) -> str:
    conn = json.loads(services["airflow-scheduler"]["environment"]["AIRFLOW_CONN_VIDEOSTYLE_BLOB"])
    assert conn["conn_type"] == "wasb"
    return str(conn["extra"]["connection_string"])


def _fields(connection_string: str) -> dict[str, str]:
    return dict(f.split("=", 1) for f in connection_string.strip(";").split(";"))


def test_only_credentials_are_azurites_published_key_and_local_defaults(
    compose: dict[str, Any], azurite: str
) -> None:
    text = COMPOSE.read_text()
    assert "-----BEGIN" not in text
    assert "SharedAccessSignature" not in text
    assert not re.search(r"[?&]sig=", text)
    published = _fields(azurite)["AccountKey"]  # the key the suite's own Azurite accepts
    keys = set(re.findall(r"AccountKey=([^;\"'\s]+)", text))
    assert keys == {published}
    secretish = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|_KEY$", re.IGNORECASE)
    for service in compose["services"].values():
        for name, value in (service.get("environment") or {}).items():
            if secretish.search(name):
                # Only the well-known local default, overridable from the shell or .env.
                assert value in ("airflow", f"${{{name}:-airflow}}"), name


@pytest.mark.integration
def test_blob_connection_reaches_azurite_and_blob_init_creates_the_containers(
    services: dict[str, Any], azurite: str, tmp_path: Path
) -> None:
    """The compose stack's videostyle_blob connection, pointed from the `azurite` service to the
    suite's own Azurite, lets blob-init's script create the pipeline's containers, twice."""
    stack = _fields(_blob_connection_string(services))
    assert stack["BlobEndpoint"] == "http://azurite:10000/devstoreaccount1"
    local = {**stack, "BlobEndpoint": _fields(azurite)["BlobEndpoint"]}
    connection_string = ";".join(f"{k}={v}" for k, v in local.items()) + ";"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOSTYLE_", "AIRFLOW"))}
    env |= {
        "AIRFLOW_HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT / "plugins"),
        "AIRFLOW_CONN_VIDEOSTYLE_BLOB": json.dumps(
            {"conn_type": "wasb", "extra": {"connection_string": connection_string}}
        ),
    }
    script = ROOT / "images" / "airflow" / "create_containers.py"
    # Run twice, as a restarted stack does: it finds its containers and keeps them.
    twice = f"import runpy\nfor _ in range(2): runpy.run_path({str(script)!r}, run_name='__main__')"
    subprocess.run([sys.executable, "-c", twice], env=env, check=True, capture_output=True)
    names = {c.name for c in BlobServiceClient.from_connection_string(azurite).list_containers()}
    assert {"videos-in", "videos-work", "videos-out"} <= names
