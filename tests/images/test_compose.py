"""docker-compose.yaml, checked without a Docker engine: the Compose specification's schema, the
services and how they wait for each other, what they build, and the one credential in it (the
storage connection) working against a real Azurite, where airflow-init provisions what the DAGs
need."""

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
from videostyle_airflow.provision import DEFAULT_POOL, POOLS, VARIABLES

COMPOSE = ROOT / "docker-compose.yaml"
BIN = Path(sys.executable).parent
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
}
ONE_SHOT = {"airflow-init"}
PROVISION = ["python", "-m", "videostyle_airflow.provision"]


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
    assert set(services) == AIRFLOW_SERVICES | {"postgres", "azurite"}
    commands = {name: services[name].get("command") for name in AIRFLOW_SERVICES}
    assert commands == {
        # The entrypoint migrates the database, then execs a command that starts with `python`.
        "airflow-init": PROVISION,
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        # deferrable sensors wait here
        "airflow-triggerer": "triggerer",
    }
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    # The variables are provisioned (editable in the UI), not pinned in the environment; the
    # launcher is the one the `local` image target can run.
    assert not [name for name in env if name.startswith("AIRFLOW_VAR_")]
    assert VARIABLES["VIDEOSTYLE_LAUNCHER"] == services["airflow-scheduler"]["build"]["target"]
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
    # Tasks report to the execution API.
    for name in ("airflow-scheduler", "airflow-triggerer"):
        assert services[name]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    # airflow-init creates the containers, so everything after it finds them.
    assert services["airflow-init"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "azurite": {"condition": "service_healthy"},
    }


def test_airflow_init_runs_a_module_the_airflow_image_carries(services: dict[str, Any]) -> None:
    """`python -m videostyle_airflow.provision` runs outside Airflow's own plugin loading: the
    image must install the project whose plugins/ it carries (tests/images/test_dockerfiles.py
    checks how)."""
    build = services["airflow-init"]["build"]
    steps = instructions(ROOT / build["context"] / build["dockerfile"])
    copies = [i.args.split() for i in steps if i.keyword == "COPY"]
    assert ["plugins/", "/opt/airflow/plugins/"] in copies
    assert ["pyproject.toml", "/opt/airflow/pyproject.toml"] in copies
    runs = [i.args for i in steps if i.stage == build["target"] and i.keyword == "RUN"]
    assert "pip install --no-cache-dir --no-deps -e /opt/airflow" in runs
    module = PROVISION[PROVISION.index("-m") + 1]
    assert (ROOT / "plugins" / (module.replace(".", "/") + ".py")).is_file()


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


def _python(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


# What a metadata database holds: read back through the ORM, not the variables' secrets chain,
# so a value that only the environment supplies does not count.
READ_BACK = """
import json
from airflow.models.pool import Pool
from airflow.models.variable import Variable
from airflow.utils.session import create_session
with create_session() as session:
    pools = {p.pool: p.slots for p in session.query(Pool)}
    variables = {v.key: v.val for v in session.query(Variable)}
print("\\n" + json.dumps({"pools": pools, "variables": variables}))
"""


@pytest.mark.integration
def test_airflow_init_provisions_the_pool_variables_and_containers(
    services: dict[str, Any], azurite: str, tmp_path: Path
) -> None:
    """airflow-init's command, run twice as a restarted stack runs it, on a freshly migrated
    metadata database, with the compose stack's videostyle_blob connection pointed from the
    `azurite` service to the suite's own Azurite: the containers, the pool and the variables the
    DAGs need exist, with provision's values."""
    command = services["airflow-init"]["command"]
    assert command == PROVISION
    stack = _fields(_blob_connection_string(services))
    assert stack["BlobEndpoint"] == "http://azurite:10000/devstoreaccount1"
    local = {**stack, "BlobEndpoint": _fields(azurite)["BlobEndpoint"]}
    connection_string = ";".join(f"{k}={v}" for k, v in local.items()) + ";"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOSTYLE_", "AIRFLOW"))}
    env |= {
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_VIDEOSTYLE_BLOB": json.dumps(
            {"conn_type": "wasb", "extra": {"connection_string": connection_string}}
        ),
    }
    _python(env, "-m", "airflow", "db", "migrate")  # the entrypoint's _AIRFLOW_DB_MIGRATE
    for _ in range(2):  # a restarted stack runs it again and keeps what it finds
        _python(env, *command[1:])

    names = {c.name for c in BlobServiceClient.from_connection_string(azurite).list_containers()}
    assert {"videos-in", "videos-work", "videos-out"} <= names
    found = json.loads(_python(env, "-c", READ_BACK).splitlines()[-1])
    provisioned = {name: slots for name, slots in found["pools"].items() if name != DEFAULT_POOL}
    assert provisioned == {name: spec.slots for name, spec in POOLS.items()}
    assert provisioned == {"videostyle_scoring": 1}  # one scoring job at a time on one machine
    assert found["variables"] == VARIABLES
