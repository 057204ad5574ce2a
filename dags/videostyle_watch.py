"""Every few minutes: wait for videos in the inputs container, claim the new ones, and start
one videostyle_process run per claimed video.

The sensor defers to the triggerer while the container is empty. It only says that videos
exist; the claim markers make each video start exactly one process run.
"""

from datetime import datetime, timedelta
from typing import Any

from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
from airflow.providers.microsoft.azure.sensors.wasb import WasbPrefixSensor
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, get_current_context, task

from videostyle_airflow.claims import claim_new_videos
from videostyle_airflow.config import (
    BLOB_CONN_ID,
    OWNER,
    PROCESS_DAG_ID,
    WATCH_DAG_ID,
    inputs_location,
    work_location,
)
from videostyle_airflow.ids import run_id_for_video

INPUTS = inputs_location()
EVERY = timedelta(minutes=5)


def process_run_for(claimed: dict[str, str]) -> dict[str, Any]:
    """The trigger's arguments for one video; style, ranks... default to the process Params."""
    return {
        "trigger_run_id": run_id_for_video(claimed["video"], claimed["version"]),
        "conf": {"video": claimed["video"]},
    }


with DAG(
    dag_id=WATCH_DAG_ID,
    description="Start one videostyle_process run per new video in the inputs container",
    schedule=EVERY,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["videostyle", "intake"],
    default_args={
        "owner": OWNER,
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "execution_timeout": timedelta(minutes=5),
    },
    doc_md=__doc__,
) as dag:
    wait_for_videos = WasbPrefixSensor(
        task_id="wait_for_videos",
        container_name=INPUTS.container,
        prefix=INPUTS.prefix,
        wasb_conn_id=BLOB_CONN_ID,
        deferrable=True,
        poke_interval=30,
        # Give up before the next run is due; an empty container is no failure.
        timeout=EVERY.total_seconds() - 30,
        soft_fail=True,
    )

    @task
    def claim_videos() -> list[dict[str, str]]:
        """The videos this run claimed: names and versions only, they go through XCom."""
        claimant = f"{WATCH_DAG_ID}/{get_current_context()['run_id']}"
        hook = WasbHook(wasb_conn_id=BLOB_CONN_ID)
        return claim_new_videos(hook, INPUTS, work_location(), claimant=claimant)

    claimed = claim_videos()
    # skip_when_already_exists: a retry after a partial fan-out finds its runs and moves on.
    start_processing = TriggerDagRunOperator.partial(
        task_id="start_processing",
        trigger_dag_id=PROCESS_DAG_ID,
        logical_date=None,
        skip_when_already_exists=True,
        map_index_template="{{ task.conf['video'] }}",
    ).expand_kwargs(claimed.map(process_run_for))

    wait_for_videos >> claimed >> start_processing
