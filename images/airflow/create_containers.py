"""Create the pipeline's containers (inputs, work, outputs) if they are missing.

Run once when a storage account is new, e.g. by the compose stack's `blob-init` service. The
account is the `videostyle_blob` connection's, the container names the library's settings, so
they are the ones the DAGs and the steps use.
"""

import contextlib

from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
from azure.core.exceptions import ResourceExistsError

from videostyle.settings import Settings
from videostyle_airflow.config import BLOB_CONN_ID, blob_location


def main() -> None:
    settings = Settings()
    # The SDK client, not WasbHook.create_container: that one logs a refused request and carries
    # on, and an init step that cannot create the containers must fail.
    service = WasbHook(wasb_conn_id=BLOB_CONN_ID).get_conn()
    for url in (settings.inputs_url, settings.work_url, settings.outputs_url):
        # An existing container is left as it is: a restarted stack keeps its videos.
        with contextlib.suppress(ResourceExistsError):
            service.create_container(blob_location(url).container)


if __name__ == "__main__":
    main()
