"""Azurite, the Azure Blob Storage emulator from npm, on 127.0.0.1: the one start-up the demo
and the tests use (the live service runs the same command line under its own supervision)."""

import os
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AZURITE = ROOT / "node_modules" / ".bin" / "azurite-blob"
# Azurite's published development account; it guards nothing.
DEV_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
START_TIMEOUT_S = 30


class AzuriteError(RuntimeError):
    """Azurite is not installed, or did not come up."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def azurite_connection_string(port: int) -> str:
    """The development account's connection string for Azurite on 127.0.0.1:`port`."""
    return (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )


def azurite_argv(port: int, location: Path) -> list[str]:
    """The command line of Azurite serving blobs from `location` on 127.0.0.1:`port`."""
    if not AZURITE.exists():
        raise AzuriteError(f"{AZURITE} is missing: run `npm ci` (`make deps` runs it)")
    return [
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
    ]


def start_azurite(
    port: int, location: Path, *, accounts: str | None = None
) -> subprocess.Popen[bytes]:
    """Azurite serving blobs from `location` on 127.0.0.1:`port`, silent, once it accepts
    connections; `accounts` ("name:key;...") replaces the development account. AzuriteError
    where it is missing, exits or is not up within START_TIMEOUT_S."""
    proc = subprocess.Popen(
        [*azurite_argv(port, location), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **({"AZURITE_ACCOUNTS": accounts} if accounts else {})},
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AzuriteError("Azurite did not start")
        time.sleep(0.2)
    return proc
