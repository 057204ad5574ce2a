"""The live service for these tests, started as `make up` starts it, on free ports in a folder
of its own, and stopped at the end of the session."""

import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from scripts.live_service import LiveService, free_port
from tests.live.api import AirflowApi


@pytest.fixture(scope="session")
def live_service() -> Iterator[LiveService]:
    # Not under pytest's tmp folder: PostgreSQL's own user must be able to reach its data.
    home = Path(tempfile.mkdtemp(prefix="videostyle-live-"))
    service = LiveService(
        home=home, api_port=free_port(), blob_port=free_port(), db_port=free_port()
    )
    # A SIGTERM (a CI time limit, `kill`) unwinds like Ctrl-C, so the service is still stopped:
    # its components run in sessions of their own and would outlive the suite.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        service.up()  # a failed start stops what it started itself
        yield service
        stopped = service.down()
        assert "scheduler" in stopped, stopped
    finally:
        signal.signal(signal.SIGTERM, previous)
        service.down()
        shutil.rmtree(home, ignore_errors=True)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@pytest.fixture(scope="session")
def api(live_service: LiveService) -> Iterator[AirflowApi]:
    login = live_service.login()
    client = AirflowApi(live_service.url, username=login["username"], password=login["password"])
    yield client
    client.close()


@pytest.fixture(scope="session")
def blob_service(live_service: LiveService) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(live_service.blob_connection_string)
