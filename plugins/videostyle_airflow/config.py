"""Names the DAGs share: their ids, the storage connection, where videos arrive and claims go."""

import os
from typing import NamedTuple
from urllib.parse import urlsplit

from videostyle.settings import Settings

PROCESS_DAG_ID = "videostyle_process"
WATCH_DAG_ID = "videostyle_watch"
OWNER = "videostyle"
# A wasb connection whose extra `connection_string` (with the account key) the sensor and the
# claims use, and that signs each step's short-lived SAS tokens; steps never see the key.
BLOB_CONN_ID = "videostyle_blob"
# Airflow Variable (or env AIRFLOW_VAR_VIDEOSTYLE_LAUNCHER) choosing where steps run.
LAUNCHER_VARIABLE = "VIDEOSTYLE_LAUNCHER"
# Airflow Variable (JSON): the look of an upload whose blob metadata chooses none, e.g.
# {"style": "scream"}; unset, the process DAG's Params' defaults.
INTAKE_DEFAULTS_VARIABLE = "VIDEOSTYLE_INTAKE_DEFAULTS"
# Process runs in flight at once: each scores on its own ranks, so on one machine they queue.
MAX_ACTIVE_RUNS = int(os.environ.get("VIDEOSTYLE_MAX_ACTIVE_RUNS", "1"))
# Seconds between two listings of the inputs container by the triggerer: the longest a new
# upload waits to be seen, and all an idle container costs (one List Blobs call each).
INTAKE_INTERVAL_S = float(os.environ.get("VIDEOSTYLE_INTAKE_INTERVAL_S", "10"))
# The Airflow pool every scoring task takes a slot of: its size caps concurrent scoring (GPUs,
# MPI jobs) across all runs. Create it with `airflow pools set videostyle_scoring N ...`.
SCORING_POOL = "videostyle_scoring"


class BlobLocation(NamedTuple):
    """A container and the prefix (empty, or ending in "/") its blob names start with."""

    container: str
    prefix: str

    @property
    def url(self) -> str:
        return f"az://{self.container}/{self.prefix}".rstrip("/")


def blob_location(url: str) -> BlobLocation:
    """Split the library's az://container[/prefix] URL; Airflow's hooks need Azure, not folders."""
    parts = urlsplit(url)
    if parts.scheme not in ("az", "abfs") or not parts.netloc:
        raise ValueError(f"{url!r} is not az://container[/prefix]: the Airflow side needs Azure")
    prefix = parts.path.strip("/")
    return BlobLocation(parts.netloc, f"{prefix}/" if prefix else "")


# The library's own settings name the containers, so the DAGs and the CLI they launch
# (which inherits this environment) always agree on them.
def inputs_location() -> BlobLocation:
    return blob_location(Settings().inputs_url)


def work_location() -> BlobLocation:
    return blob_location(Settings().work_url)


def outputs_location() -> BlobLocation:
    return blob_location(Settings().outputs_url)


def styles_location() -> BlobLocation:
    return blob_location(Settings().styles_url)
