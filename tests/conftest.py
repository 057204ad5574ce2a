"""Real services for the suite: Azurite (Azure Blob Storage emulator from npm) on a free port."""

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.media import make_clip

ROOT = Path(__file__).resolve().parents[1]
AZURITE = ROOT / "node_modules" / ".bin" / "azurite-blob"
# Azurite's published development account; it guards nothing.
DEV_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def azurite_connection_string(port: int) -> str:
    return (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )


def start_azurite(
    port: int, location: Path, *, accounts: str | None = None
) -> subprocess.Popen[bytes]:
    """Azurite serving blobs from `location` on 127.0.0.1:`port`, once it accepts connections;
    `accounts` ("name:key;...") replaces the development account."""
    if not AZURITE.exists():
        pytest.fail(f"{AZURITE} is missing: run `make test` (it runs npm ci) or `npm ci`")
    proc = subprocess.Popen(
        [
            str(AZURITE),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(location),
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **({"AZURITE_ACCOUNTS": accounts} if accounts else {})},
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("Azurite did not start")
            time.sleep(0.2)


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
