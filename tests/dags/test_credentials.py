"""Each step's SAS credentials, tried against Azurite: what the grants allow works, nothing else.

Azurite enforces container SAS permissions (read, write, list, delete), the container a SAS is
signed for, and its expiry, each with a 403, as Azure does: these tests fail if it stops.
"""

from collections.abc import Callable
from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient, ContainerClient

from videostyle.errors import BadInputError
from videostyle.settings import Settings
from videostyle.storage import Stores
from videostyle_airflow import credentials
from videostyle_airflow.config import BLOB_CONN_ID
from videostyle_airflow.credentials import GRANTS, Store

STORES: tuple[Store, ...] = ("inputs", "work", "outputs", "styles")
HOUR = timedelta(hours=1)
Operation = Callable[[ContainerClient], object]
OPERATIONS: dict[str, tuple[str, Operation]] = {
    # name: (the SAS permission it needs, the call)
    "read": ("r", lambda c: c.get_blob_client("seed.txt").download_blob().readall()),
    "write": ("w", lambda c: c.upload_blob("new.txt", b"x", overwrite=True)),
    "list": ("l", lambda c: list(c.list_blobs())),
    "delete": ("d", lambda c: c.delete_blob("seed.txt")),
}


@pytest.fixture
def containers(blob_connection: str, azurite: str) -> dict[Store, str]:
    """Each store's container in Azurite, holding a blob `seed.txt`."""
    service = BlobServiceClient.from_connection_string(azurite)
    names: dict[Store, str] = {
        "inputs": f"{blob_connection}-in",
        "work": f"{blob_connection}-work",
        "outputs": f"{blob_connection}-out",
        "styles": f"{blob_connection}-styles",
    }
    for name in names.values():
        service.get_container_client(name).upload_blob("seed.txt", b"seed")
    return names


def stores_of(step: str, monkeypatch: pytest.MonkeyPatch) -> Stores:
    """The library's stores as a step sees them: with its step env, and no account key."""
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    for name, value in credentials.step_env(step, conn_id=BLOB_CONN_ID, ttl=HOUR).items():
        monkeypatch.setenv(name, value)
    return Stores(Settings())


def allowed(operation: Operation, container: ContainerClient) -> bool:
    """Whether the service lets `operation` through; any refusal but 403 is an error."""
    try:
        operation(container)
    except HttpResponseError as exc:
        if exc.status_code != 403:
            raise
        return False
    return True


def test_each_step_is_granted_just_what_it_needs() -> None:
    """Stated here, not read from GRANTS: a grant lost or widened there fails this."""
    assert {step: dict(grants) for step, grants in GRANTS.items()} == {
        # reads the video; writes the job; reads the style image a painting job names
        "preprocess": {"inputs": "rl", "work": "rwl", "styles": "rl"},
        "score": {"work": "rwl"},
        "stitch": {"work": "rwl"},
        # reads an earlier run's report, writes the output; its timing record goes to work
        "publish": {"work": "rwl", "outputs": "rwl"},
    }


@pytest.mark.parametrize("step", list(GRANTS))
def test_a_step_can_do_exactly_what_its_grants_say(
    step: str, containers: dict[Store, str], azurite: str
) -> None:
    env = credentials.step_env(step, conn_id=BLOB_CONN_ID, ttl=HOUR)
    granted = GRANTS[step]
    # A store the step has no grant on is tried with one of the SAS it does hold.
    any_sas = env[credentials.credential_variable(next(iter(granted)))]

    outcomes = {}
    expected = {}
    for store in STORES:
        sas = env.get(credentials.credential_variable(store), any_sas)
        client = BlobServiceClient.from_connection_string(sas)
        for name, (letter, operation) in OPERATIONS.items():
            container = client.get_container_client(containers[store])
            outcomes[store, name] = allowed(operation, container)
            expected[store, name] = letter in granted.get(store, "")

    assert outcomes == expected
    assert not any(ok for (_, operation), ok in outcomes.items() if operation == "delete")


def test_step_env_names_the_stores_and_carries_no_account_key(
    containers: dict[Store, str], azurite: str
) -> None:
    env = credentials.step_env("publish", conn_id=BLOB_CONN_ID, ttl=HOUR)

    assert list(env) == credentials.step_env_names("publish")
    assert env["VIDEOSTYLE_WORK_URL"] == f"az://{containers['work']}"
    assert env["VIDEOSTYLE_OUTPUTS_URL"] == f"az://{containers['outputs']}"
    account_key = dict(f.split("=", 1) for f in azurite.split(";") if f)["AccountKey"]
    for value in env.values():
        assert account_key not in value
        assert "AccountKey" not in value


def test_the_library_runs_on_a_step_env_alone(
    containers: dict[Store, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stores = stores_of("score", monkeypatch)

    stores.work.write_bytes("jobs/j/units/00000.mp4", b"unit")
    assert stores.work.read_bytes("jobs/j/units/00000.mp4") == b"unit"
    assert stores.work.exists("jobs/j/units/00000.mp4")
    assert not stores.work.exists("jobs/j/units/00001.mp4")
    with pytest.raises(BadInputError, match="needs a connection string"):
        stores.inputs.exists("seed.txt")


def test_a_missing_video_is_missing_not_refused_under_preprocess_credentials(
    containers: dict[Store, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = stores_of("preprocess", monkeypatch).inputs

    assert inputs.stat("seed.txt").size == 4
    with pytest.raises(FileNotFoundError):  # the CLI's bad input, never retried
        inputs.stat("no such video.mp4")


def test_a_missing_style_image_is_missing_not_refused_under_preprocess_credentials(
    containers: dict[Store, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    styles = stores_of("preprocess", monkeypatch).styles

    assert styles.url == f"az://{containers['styles']}"
    assert styles.read_bytes("seed.txt") == b"seed"
    with pytest.raises(FileNotFoundError):  # the painting model's bad input, never retried
        styles.stat("no such painting.jpg")


def test_an_expired_sas_is_refused(containers: dict[Store, str]) -> None:
    env = credentials.step_env("stitch", conn_id=BLOB_CONN_ID, ttl=-timedelta(minutes=1))
    client = BlobServiceClient.from_connection_string(env["VIDEOSTYLE_WORK_CONNECTION_STRING"])

    assert not allowed(OPERATIONS["read"][1], client.get_container_client(containers["work"]))


def test_the_sas_tokens_are_masked_in_logs(containers: dict[Store, str]) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    env = credentials.step_env("preprocess", conn_id=BLOB_CONN_ID, ttl=HOUR)
    sas = env["VIDEOSTYLE_INPUTS_CONNECTION_STRING"].split("SharedAccessSignature=", 1)[1]

    assert sas not in str(redact(f"token {sas}"))


def test_the_ttl_outlives_the_steps_timeout() -> None:
    assert credentials.credential_ttl(timedelta(hours=4)) > timedelta(hours=4)
    assert credentials.credential_ttl(None) >= credentials.DEFAULT_TTL


def test_ambient_credentials_never_reach_a_step() -> None:
    env = {
        "PATH": "/bin",
        "AZURE_STORAGE_CONNECTION_STRING": "AccountKey=k",
        "VIDEOSTYLE_INPUTS_CONNECTION_STRING": "another step's SAS",
        "AIRFLOW_CONN_VIDEOSTYLE_BLOB": '{"extra": {"connection_string": "AccountKey=k"}}',
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://airflow:pw@db/airflow",
        "VIDEOSTYLE_PRECISION": "fp16",
    }

    assert credentials.without_ambient_credentials(env) == {
        "PATH": "/bin",
        "VIDEOSTYLE_PRECISION": "fp16",
    }


def test_a_connection_without_an_account_key_cannot_mint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    sas_only = "BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=x&sig=y"
    monkeypatch.setenv(
        "AIRFLOW_CONN_VIDEOSTYLE_BLOB",
        f'{{"conn_type": "wasb", "extra": {{"connection_string": "{sas_only}"}}}}',
    )
    with pytest.raises(AirflowFailException, match="no AccountKey"):
        credentials.step_env("stitch", conn_id=BLOB_CONN_ID, ttl=HOUR)
