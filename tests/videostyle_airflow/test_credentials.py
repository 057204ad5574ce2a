"""Each step's SAS credentials: what each step needs, stated here, against the tokens minted.

The expected grants are written out below, never read from the code's own table
(the grants of videostyle.steps.table): each step's connection strings are parsed, each
SAS's permissions (`sp=`) and the container it is signed for (the one its signature is the
HMAC of) compared with them. Then the tokens are tried against Azurite, which enforces container SAS
permissions (read, write, list, delete), the container a SAS is signed for, and its expiry,
each with a 403, as Azure does: these tests fail if it stops.
"""

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient, ContainerClient

from tests.connections import wasb_connection_uri
from videostyle.errors import BadInputError
from videostyle.settings import Settings
from videostyle.steps.table import STEPS, Store
from videostyle.storage import Stores
from videostyle_airflow import credentials
from videostyle_airflow.config import BLOB_CONN_ID

STORES: tuple[Store, ...] = ("inputs", "work", "outputs", "styles")
HOUR = timedelta(hours=1)

# What each step needs of each store, and nothing else; a store left out gets no credential.
# Listing is needed wherever a blob may be missing: adlfs lists to tell a missing blob from a
# folder, so without it a missing blob reads as a refusal, not as missing. No step deletes.
NEEDS: dict[str, dict[Store, set[str]]] = {
    # Reads the uploaded video (a missing one is bad input); writes the job (plan, units) to
    # work and reads it back; reads the style image a painting job names (missing: bad input).
    "preprocess": {
        "inputs": {"read", "list"},
        "work": {"read", "write", "list"},
        "styles": {"read", "list"},
    },
    # Reads the job's units from work, writes the styled units there.
    "score": {"work": {"read", "write", "list"}},
    # Reads the styled units from work, writes the stitched video there.
    "stitch": {"work": {"read", "write", "list"}},
    # Reads the stitched video and writes its timing record in work; writes the output and
    # its report to outputs, where it reads an earlier run's report.
    "publish": {
        "work": {"read", "write", "list"},
        "outputs": {"read", "write", "list"},
    },
}
# Azure's container SAS permission letters (`sp=`), as the service reads them.
SAS_PERMISSIONS = {
    "r": "read",
    "a": "add",
    "c": "create",
    "w": "write",
    "d": "delete",
    "x": "delete version",
    "y": "permanent delete",
    "l": "list",
    "t": "tags",
    "f": "find",
    "m": "move",
    "e": "execute",
    "o": "ownership",
    "p": "permissions",
    "i": "set immutability policy",
}

Operation = Callable[[ContainerClient], object]
OPERATIONS: dict[str, Operation] = {
    # the permission each needs: the call
    "read": lambda c: c.get_blob_client("seed.txt").download_blob().readall(),
    "write": lambda c: c.upload_blob("new.txt", b"x", overwrite=True),
    "list": lambda c: list(c.list_blobs()),
    "delete": lambda c: c.delete_blob("seed.txt"),
}

# A fake account (the SAS are minted offline), and each store's container in it.
ACCOUNT = "videosacct"
ACCOUNT_KEY = base64.b64encode(b"the videos account's own key!!!!").decode()
ENDPOINT = f"https://{ACCOUNT}.blob.core.windows.net/"
CONTAINERS: dict[Store, str] = {
    "inputs": "videos-in",
    "work": "videos-work",
    "outputs": "videos-out",
    "styles": "videos-styles",
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


@pytest.fixture
def fake_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """`videostyle_blob` is ACCOUNT, its stores in CONTAINERS."""
    account = (
        f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        "EndpointSuffix=core.windows.net"
    )
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOSTYLE_BLOB", wasb_connection_uri(account))
    for store, container in CONTAINERS.items():
        monkeypatch.setenv(f"VIDEOSTYLE_{store.upper()}_URL", f"az://{container}")


def sas_fields(connection_string: str) -> dict[str, str]:
    """A step's connection string's SAS, field by field (`sp`, `sr`, `sig`...), decoded."""
    fields = dict(field.split("=", 1) for field in connection_string.split(";") if field)
    assert set(fields) == {"BlobEndpoint", "SharedAccessSignature"}
    assert fields["BlobEndpoint"] == ENDPOINT  # the videos' account, and no other
    query = parse_qs(fields["SharedAccessSignature"], keep_blank_values=True, strict_parsing=True)
    assert all(len(values) == 1 for values in query.values())
    return {name: values[0] for name, values in query.items()}


def signed_container(sas: dict[str, str]) -> str | None:
    """Which of CONTAINERS a service SAS is signed for: the one whose resource its signature
    is the HMAC of (Azure's string-to-sign of a service SAS, version 2020-12-06 and later)."""
    for container in CONTAINERS.values():
        string_to_sign = "\n".join(
            [
                sas["sp"],
                sas.get("st", ""),
                sas["se"],
                f"/blob/{ACCOUNT}/{container}",
                sas.get("si", ""),
                sas.get("sip", ""),
                sas.get("spr", ""),
                sas["sv"],
                sas["sr"],
                sas.get("sst", ""),  # snapshot time
                sas.get("ses", ""),  # encryption scope
                *(sas.get(name, "") for name in ("rscc", "rscd", "rsce", "rscl", "rsct")),
            ]
        )
        key = base64.b64decode(ACCOUNT_KEY)
        digest = hmac.new(key, string_to_sign.encode(), hashlib.sha256).digest()
        if hmac.compare_digest(base64.b64encode(digest).decode(), sas["sig"]):
            return container
    return None


def test_every_step_is_stated() -> None:
    assert set(NEEDS) == set(STEPS)


@pytest.mark.parametrize("step", list(NEEDS))
@pytest.mark.usefixtures("fake_account")
def test_a_steps_tokens_grant_what_it_needs_on_its_containers_and_nothing_else(
    step: str,
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    env = credentials.storage_env(step, conn_id=BLOB_CONN_ID, ttl=HOUR)

    # A store the step does not need: no credential, not even its address.
    assert sorted(env) == sorted(
        f"VIDEOSTYLE_{store.upper()}_{kind}"
        for store in NEEDS[step]
        for kind in ("URL", "CONNECTION_STRING")
    )
    granted = {}
    for store in NEEDS[step]:
        assert env[f"VIDEOSTYLE_{store.upper()}_URL"] == f"az://{CONTAINERS[store]}"
        sas = sas_fields(env[f"VIDEOSTYLE_{store.upper()}_CONNECTION_STRING"])
        # A container's SAS (sr=c): not an account SAS (ss, srt), nor one bound to a stored
        # access policy (si), whose grants and expiry live in the account, out of sight.
        assert sas["sr"] == "c"
        assert not {"ss", "srt", "si"} & set(sas)
        expiry = datetime.strptime(sas["se"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert before + HOUR <= expiry <= datetime.now(UTC) + HOUR
        assert sas["spr"] == "https"  # never in clear to an account that speaks TLS
        permissions = {SAS_PERMISSIONS.get(letter, letter) for letter in sas["sp"]}
        granted[store] = (signed_container(sas), permissions)

    assert granted == {store: (CONTAINERS[store], needs) for store, needs in NEEDS[step].items()}


def stores_of(step: str, monkeypatch: pytest.MonkeyPatch) -> Stores:
    """The library's stores as a step sees them: with its step env, and no account key."""
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    for name, value in credentials.storage_env(step, conn_id=BLOB_CONN_ID, ttl=HOUR).items():
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


@pytest.mark.parametrize("step", list(NEEDS))
def test_a_step_can_do_exactly_what_it_needs__azurite(
    step: str, containers: dict[Store, str], azurite: str
) -> None:
    env = credentials.storage_env(step, conn_id=BLOB_CONN_ID, ttl=HOUR)
    needs = NEEDS[step]
    # A store the step has no credential for is tried with one of the SAS it does hold.
    any_sas = env[credentials.credential_variable(next(iter(needs)))]

    outcomes = {}
    expected = {}
    for store in STORES:
        sas = env.get(credentials.credential_variable(store), any_sas)
        client = BlobServiceClient.from_connection_string(sas)
        for name, operation in OPERATIONS.items():
            container = client.get_container_client(containers[store])
            outcomes[store, name] = allowed(operation, container)
            expected[store, name] = name in needs.get(store, set())

    assert outcomes == expected
    assert not any(ok for (_, operation), ok in outcomes.items() if operation == "delete")


def test_storage_env_names_the_stores_and_carries_no_account_key(
    containers: dict[Store, str], azurite: str
) -> None:
    env = credentials.storage_env("publish", conn_id=BLOB_CONN_ID, ttl=HOUR)

    assert list(env) == credentials.storage_env_names("publish")
    assert env["VIDEOSTYLE_WORK_URL"] == f"az://{containers['work']}"
    assert env["VIDEOSTYLE_OUTPUTS_URL"] == f"az://{containers['outputs']}"
    account_key = dict(f.split("=", 1) for f in azurite.split(";") if f)["AccountKey"]
    for value in env.values():
        assert account_key not in value
        assert "AccountKey" not in value


def test_the_library_runs_on_a_storage_env_alone(
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
    env = credentials.storage_env("stitch", conn_id=BLOB_CONN_ID, ttl=-timedelta(minutes=1))
    client = BlobServiceClient.from_connection_string(env["VIDEOSTYLE_WORK_CONNECTION_STRING"])

    assert not allowed(OPERATIONS["read"], client.get_container_client(containers["work"]))


def test_the_sas_tokens_are_masked_in_logs(containers: dict[Store, str]) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    env = credentials.storage_env("preprocess", conn_id=BLOB_CONN_ID, ttl=HOUR)
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
        credentials.storage_env("stitch", conn_id=BLOB_CONN_ID, ttl=HOUR)
