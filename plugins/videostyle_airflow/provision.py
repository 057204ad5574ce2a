"""What the DAGs need before they can run, in one table, and the one command that creates it.

`make up`, the compose stack's `airflow-init` and the deployment guide all run
`python -m videostyle_airflow.provision`; the DAG-integrity tests fail when a DAG refers to a
pool, connection or variable that is not in these tables. Every action is idempotent: running it
again leaves a working set-up as it is (a pool's size and a variable's value are kept).
"""

import argparse
import contextlib
import json
import os
from typing import NamedTuple

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient

from videostyle.settings import Settings
from videostyle_airflow.config import (
    BLOB_CONN_ID,
    INTAKE_DEFAULTS_VARIABLE,
    LAUNCHER_VARIABLE,
    SCORING_POOL,
    blob_location,
)

DEFAULT_POOL = "default_pool"  # Airflow's own, always there


class PoolSpec(NamedTuple):
    slots: int
    description: str


# One scoring job at a time on one machine; a cluster sets VIDEOSTYLE_SCORING_SLOTS to its GPUs
# divided by the GPUs a job takes.
POOLS = {
    SCORING_POOL: PoolSpec(
        slots=int(os.environ.get("VIDEOSTYLE_SCORING_SLOTS", "1")),
        description="videostyle scoring jobs at once: each holds its ranks (cores or GPUs)",
    ),
}
# Variables the DAGs read, with the value a new set-up gets.
VARIABLES = {LAUNCHER_VARIABLE: "local", INTAKE_DEFAULTS_VARIABLE: "{}"}
# Connections the DAGs use: the storage account, whose key signs every step's SAS.
CONNECTIONS = (BLOB_CONN_ID,)


def create_containers() -> list[str]:
    """The inputs, work, outputs and styles containers in the `videostyle_blob` account, if
    missing."""
    from airflow.models.connection import Connection

    # Read as the scheduler reads it (environment, secrets backends, then the database): this
    # runs outside any task, where the task SDK's WasbHook cannot reach connections.
    extra = Connection.get_connection_from_secrets(BLOB_CONN_ID).extra_dejson
    service = BlobServiceClient.from_connection_string(extra["connection_string"])
    settings = Settings()
    urls = (settings.inputs_url, settings.work_url, settings.outputs_url, settings.styles_url)
    names = list(dict.fromkeys(blob_location(url).container for url in urls))  # each once
    for name in names:
        # The SDK's own call, which raises on a refused request (WasbHook's logs and carries
        # on); an existing container is kept: a restarted stack keeps its videos.
        with contextlib.suppress(ResourceExistsError):
            service.create_container(name)
    return names


def create_pools() -> None:
    from airflow.models.pool import Pool

    for name, spec in POOLS.items():
        existing = Pool.get_pool(name)
        slots = existing.slots if existing is not None else spec.slots
        Pool.create_or_update_pool(name, slots, spec.description, include_deferred=False)


def create_variables() -> None:
    from airflow.models.variable import Variable

    for key, value in VARIABLES.items():
        if Variable.get_variable_from_secrets(key) is None:
            Variable.set(key, value)


def create_blob_connection(connection_string: str) -> None:
    """Store `videostyle_blob` in the metadata database (shown in the UI), or update it."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        conn = session.query(Connection).filter(Connection.conn_id == BLOB_CONN_ID).one_or_none()
        if conn is None:
            conn = Connection(conn_id=BLOB_CONN_ID, conn_type="wasb")
            session.add(conn)
        conn.description = "videostyle's storage account: inputs, work and outputs containers"
        conn.set_extra(json.dumps({"connection_string": connection_string}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="videostyle_airflow.provision", description=__doc__)
    parser.add_argument(
        "--blob-connection-string-env",
        metavar="VAR",
        help="store the videostyle_blob connection from this environment variable (never argv: "
        "it holds the account key); without it the connection must exist already, e.g. as "
        "AIRFLOW_CONN_VIDEOSTYLE_BLOB",
    )
    args = parser.parse_args(argv)
    if args.blob_connection_string_env:
        create_blob_connection(os.environ[args.blob_connection_string_env])
    create_pools()
    create_variables()
    containers = create_containers()
    print(
        f"provisioned: pools {', '.join(POOLS)}; variables {', '.join(VARIABLES)}; "
        f"connection {BLOB_CONN_ID}; containers {', '.join(containers)}"
    )


if __name__ == "__main__":
    main()
