"""Least-privilege storage credentials for one step: short-lived container SAS, never the key.

The Airflow side holds the storage account key (the wasb connection's `connection_string`);
a step, local child or Kubernetes pod, gets only what `storage_env` returns: for each store the
step touches, its URL and a SAS connection string for that store's container, carrying just
the permissions the step needs and expiring soon after the step's timeout. A person gets
`blob_read_url`: one blob, read only, for a while.
"""

import mimetypes
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import get_args

from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.log import mask_secret
from azure.core.utils import parse_connection_string
from azure.storage.blob import BlobServiceClient, generate_blob_sas, generate_container_sas

from videostyle.settings import Settings
from videostyle.steps.table import Store, step
from videostyle_airflow.config import blob_location

# What each step does to each store (`Step.grants`, as container SAS permission letters) is
# stated in the steps table, beside the CLI.
# Room for the try's queueing and the clocks' skew beyond the step's own time limit.
TTL_SLACK = timedelta(minutes=15)
# For a step without an execution_timeout: the process DAG's run timeout.
DEFAULT_TTL = timedelta(hours=6)
# Every variable through which a process could find storage credentials (the library's,
# adlfs's, the Azure CLI's, azure-identity's): a step's environment carries none but those
# `storage_env` sets.
AMBIENT_CREDENTIAL_VARIABLES = frozenset(
    {
        "AZURE_STORAGE_CONNECTION_STRING",
        "VIDEOSTYLE_CONNECTION_STRING",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_KEY",
        "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_STORAGE_ACCOUNT",
        # azure-identity's service principal and workload identity: another account's keys
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_FEDERATED_TOKEN_FILE",
        *(f"VIDEOSTYLE_{store.upper()}_CONNECTION_STRING" for store in get_args(Store)),
    }
)
# Airflow's own variables (AIRFLOW_CONN_*, AIRFLOW__DATABASE__*, ...) may hold any secret of
# the deployment, the storage key included; a step needs none of them.
AIRFLOW_VARIABLE_PREFIX = "AIRFLOW"


def without_ambient_credentials(env: Mapping[str, str]) -> dict[str, str]:
    """`env` stripped of every variable that may carry credentials a step must not hold."""
    return {
        name: value
        for name, value in env.items()
        if name not in AMBIENT_CREDENTIAL_VARIABLES and not name.startswith(AIRFLOW_VARIABLE_PREFIX)
    }


def credential_ttl(execution_timeout: timedelta | None) -> timedelta:
    """How long a step's SAS must live: its whole try, whatever that may take."""
    return (execution_timeout or DEFAULT_TTL) + TTL_SLACK


def url_variable(store: Store) -> str:
    return f"VIDEOSTYLE_{store.upper()}_URL"


def credential_variable(store: Store) -> str:
    return f"VIDEOSTYLE_{store.upper()}_CONNECTION_STRING"


def storage_env_names(name: str) -> list[str]:
    """The variables `storage_env` sets for step `name`, without minting anything."""
    return [
        name
        for store in step(name).grants
        for name in (url_variable(store), credential_variable(store))
    ]


def storage_env(name: str, *, conn_id: str, ttl: timedelta) -> dict[str, str]:
    """The environment giving step `name` its stores: URLs and SAS connection strings (masked)."""
    grants = step(name).grants
    service, key = _signing_account(conn_id)
    endpoint = service.primary_endpoint
    expiry = datetime.now(UTC) + ttl
    settings = Settings()
    urls: dict[Store, str] = {
        "inputs": settings.inputs_url,
        "work": settings.work_url,
        "outputs": settings.outputs_url,
        "styles": settings.styles_url,
    }
    env: dict[str, str] = {}
    for store, permission in grants.items():
        sas = generate_container_sas(
            str(service.account_name),
            blob_location(urls[store]).container,
            account_key=key,
            permission=permission,
            expiry=expiry,
            protocol=_protocol(endpoint),
        )
        mask_secret(sas)
        env[url_variable(store)] = urls[store]
        env[credential_variable(store)] = f"BlobEndpoint={endpoint};SharedAccessSignature={sas}"
    return env


def blob_read_url(conn_id: str, container: str, blob: str, *, ttl: timedelta) -> str:
    """A URL reading blob `blob` of `container`, and nothing else, until `ttl` from now.

    Its SAS (masked in the log) grants read on that one blob; it also sets the response's
    type from the name and makes it inline (uploads carry no type), so that a browser shows
    the PNG or plays the MP4 rather than saving a file.
    """
    service, key = _signing_account(conn_id)
    content_type, _ = mimetypes.guess_type(blob)
    sas = generate_blob_sas(
        str(service.account_name),
        container,
        blob,
        account_key=key,
        permission="r",
        expiry=datetime.now(UTC) + ttl,
        protocol=_protocol(service.primary_endpoint),
        content_type=content_type,
        content_disposition="inline",
    )
    mask_secret(sas)
    return f"{service.get_blob_client(container, blob).url}?{sas}"


def _signing_account(conn_id: str) -> tuple[BlobServiceClient, str]:
    """The account of connection `conn_id` and its key (masked), which signs every SAS."""
    account = _account_connection_string(conn_id)
    fields = parse_connection_string(account, case_sensitive_keys=False)
    key = fields.get("accountkey")
    if not key:
        raise AirflowFailException(
            f"connection {conn_id!r}: its connection_string has no AccountKey to sign SAS with"
        )
    mask_secret(key)
    return BlobServiceClient.from_connection_string(account), str(key)


def _protocol(endpoint: str) -> str:
    # Never sent in clear where the account speaks TLS (Azurite speaks plain HTTP).
    return "https" if endpoint.startswith("https://") else "https,http"


def _account_connection_string(conn_id: str) -> str:
    secret = Connection.get(conn_id).extra_dejson.get("connection_string")
    if not secret:
        raise AirflowFailException(
            f"connection {conn_id!r} has no `connection_string` in its extras"
        )
    mask_secret(secret)
    return str(secret)
