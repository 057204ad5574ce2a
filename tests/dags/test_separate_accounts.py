"""Two storage accounts: the videos' and the one holding Airflow's logs and code. Every step's
credentials are signed for the videos' account alone, so no step can reach the other."""

import base64
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient, ContainerClient

from tests.conftest import free_port, start_azurite
from videostyle_airflow import credentials
from videostyle_airflow.config import BLOB_CONN_ID
from videostyle_airflow.credentials import GRANTS

LOGS_ACCOUNT = "airflowlogs"
LOGS_KEY = base64.b64encode(b"a different account's key, 32 b").decode()


@pytest.fixture
def logs_container(tmp_path: Path) -> Iterator[ContainerClient]:
    """`logs` in a second account (its own Azurite), holding one task log."""
    port = free_port()
    proc = start_azurite(port, tmp_path / "logs-account", accounts=f"{LOGS_ACCOUNT}:{LOGS_KEY}")
    service = BlobServiceClient.from_connection_string(
        f"DefaultEndpointsProtocol=http;AccountName={LOGS_ACCOUNT};AccountKey={LOGS_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{LOGS_ACCOUNT};"
    )
    container = service.create_container("logs")
    container.upload_blob("dag_id=videostyle_process/attempt=1.log", b"task log")
    yield container
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.parametrize("step", sorted(GRANTS))
def test_no_step_credential_opens_the_logs_account(
    step: str,
    blob_connection: str,
    logs_container: ContainerClient,
) -> None:
    env = credentials.step_env(step, conn_id=BLOB_CONN_ID, ttl=timedelta(hours=1))
    sas_tokens = [
        value.split("SharedAccessSignature=")[1].split(";")[0]
        for name, value in env.items()
        if name.endswith("_CONNECTION_STRING")
    ]
    assert sas_tokens
    for sas in sas_tokens:
        # The step's token presented to the logs account, for its container, as an attacker would.
        stolen = ContainerClient.from_container_url(f"{logs_container.url}?{sas}")
        with pytest.raises(HttpResponseError) as refused:
            list(stolen.list_blobs())
        assert refused.value.status_code == 403
