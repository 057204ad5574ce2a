"""Real services for the suite: Azurite (Azure Blob Storage emulator from npm) on a free port."""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import azurite as azurite_service
from scripts.azurite import azurite_connection_string, free_port
from tests.media import make_clip

# Airflow's fixtures, for tests/dags and tests/videostyle_airflow alike.
pytest_plugins = ["tests.airflow_fixtures"]


def start_azurite(
    port: int, location: Path, *, accounts: str | None = None
) -> subprocess.Popen[bytes]:
    """scripts.azurite.start_azurite, failing the test (saying why) where Azurite is missing or
    does not come up."""
    try:
        return azurite_service.start_azurite(port, location, accounts=accounts)
    except azurite_service.AzuriteError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start Azurite for the session and yield its connection string."""
    port = free_port()
    proc = start_azurite(port, tmp_path_factory.mktemp("azurite"))
    try:
        yield azurite_connection_string(port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def blob_env(azurite: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """Point the library at fresh containers in Azurite; returns the container-name prefix."""
    from azure.storage.blob import BlobServiceClient

    prefix = "t" + format(abs(hash(request.node.nodeid)) % 10**10, "010d")
    service = BlobServiceClient.from_connection_string(azurite)
    for kind in ("in", "work", "out", "styles"):
        service.create_container(f"{prefix}-{kind}")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    monkeypatch.setenv("VIDEOSTYLE_INPUTS_URL", f"az://{prefix}-in")
    monkeypatch.setenv("VIDEOSTYLE_WORK_URL", f"az://{prefix}-work")
    monkeypatch.setenv("VIDEOSTYLE_OUTPUTS_URL", f"az://{prefix}-out")
    monkeypatch.setenv("VIDEOSTYLE_STYLES_URL", f"az://{prefix}-styles")
    return prefix


@pytest.fixture(scope="session")
def sample_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("media") / "sample clip.mp4")
