"""Intake: one videostyle_process run per new video version in the inputs container, started
seconds after the upload.

The triggerer lists the inputs container every few seconds (NewVideosTrigger) and fires an
event on the inputs asset when a video or a version of one appears. Events that arrive before
this DAG's next run are consolidated into that one run, so the run never reads them: it lists
the container itself and claims every version no run has claimed (claims.py), exactly once.
"""

from datetime import datetime, timedelta
from typing import Any

from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import (
    DAG,
    Asset,
    AssetOrTimeSchedule,
    AssetWatcher,
    DeltaTriggerTimetable,
    Variable,
    get_current_context,
    task,
)

from videostyle.defaults import DEFAULT_STYLE
from videostyle_airflow.claims import claim_new_videos, run_conf
from videostyle_airflow.config import (
    BLOB_CONN_ID,
    INTAKE_DEFAULTS_VARIABLE,
    INTAKE_INTERVAL_S,
    OWNER,
    PROCESS_DAG_ID,
    WATCH_DAG_ID,
    inputs_location,
    outputs_location,
    work_location,
)
from videostyle_airflow.ids import run_id_for_video
from videostyle_airflow.intake_trigger import NewVideosTrigger

INPUTS = inputs_location()
# Only runs that failed for good leave versions unclaimed that no new event will name (a
# restarted trigger fires for what is present): this sweep claims them within the half hour.
SWEEP_EVERY = timedelta(minutes=30)

INPUTS_ASSET = Asset(
    name="videostyle_inputs",
    uri=INPUTS.url,
    watchers=[
        AssetWatcher(
            name="videostyle_new_videos",
            trigger=NewVideosTrigger(
                container=INPUTS.container,
                prefix=INPUTS.prefix,
                wasb_conn_id=BLOB_CONN_ID,
                interval=INTAKE_INTERVAL_S,
            ),
        )
    ],
)

DOC_MD = f"""
### Upload a video, get it back styled

1. Upload a video to **`{INPUTS.url}`**, the inputs container (setting `VIDEOSTYLE_INPUTS_URL`,
   default `az://videos-in`). Any name; folders are fine.
2. The upload is seen within {INTAKE_INTERVAL_S:g} s of finishing; this DAG then claims it and
   starts one **`{PROCESS_DAG_ID}`** run for it, in the default style `{DEFAULT_STYLE}`.
3. The styled video lands in **`{outputs_location().url}/<video>/<style>.mp4`** (setting
   `VIDEOSTYLE_OUTPUTS_URL`, default `az://videos-out`), e.g. `clip.mp4/{DEFAULT_STYLE}.mp4`,
   with its report `<style>.json` beside it, written last.

One run per video version: the same bytes uploaded again start nothing; other bytes under the
same name are a new version and are processed as new. A version already taken by a
`{PROCESS_DAG_ID}` run started by hand is not processed again. For another style, strength or
quality, trigger `{PROCESS_DAG_ID}` from its form.

**On by default**: this DAG is unpaused when it is first created, because intake is the
product. To stop intake, pause it with the toggle beside its name (or
`airflow dags pause {WATCH_DAG_ID}`); while it is paused nothing lists the container, and on
unpausing every version uploaded meanwhile is claimed and processed.

How: the triggerer lists the container every {INTAKE_INTERVAL_S:g} s (setting
`VIDEOSTYLE_INTAKE_INTERVAL_S`) and fires an event on the asset `{INPUTS_ASSET.name}` per new
version, which runs this DAG; it also runs every {SWEEP_EVERY.total_seconds() / 60:g} minutes
as a safety sweep. Each run claims every unclaimed version with a create-only marker under
`claims/` in `{work_location().url}`, and starts one process run per claimed version.
"""


def process_run_for(claimed: dict[str, Any]) -> dict[str, Any]:
    """The trigger's arguments for one video; what its conf leaves out, the Params default."""
    return {
        "trigger_run_id": run_id_for_video(claimed["video"], claimed["version"]),
        "conf": claimed["conf"],
    }


with DAG(
    dag_id=WATCH_DAG_ID,
    description="Start one videostyle_process run per new video version in the inputs container",
    schedule=AssetOrTimeSchedule(
        timetable=DeltaTriggerTimetable(SWEEP_EVERY), assets=[INPUTS_ASSET]
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    tags=["videostyle", "intake"],
    default_args={
        "owner": OWNER,
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "execution_timeout": timedelta(minutes=5),
    },
    doc_md=DOC_MD,
) as dag:

    @task
    def claim_videos() -> list[dict[str, Any]]:
        """The videos this run claimed, each with its run's conf: names and options only, they
        go through XCom."""
        claimant = f"{WATCH_DAG_ID}/{get_current_context()['run_id']}"
        hook = WasbHook(wasb_conn_id=BLOB_CONN_ID)
        defaults = Variable.get(INTAKE_DEFAULTS_VARIABLE, default={}, deserialize_json=True)
        return [
            claimed | {"conf": run_conf(claimed["video"], claimed["look"], defaults)}
            for claimed in claim_new_videos(hook, INPUTS, work_location(), claimant=claimant)
        ]

    # skip_when_already_exists: a retry after a partial fan-out finds its runs and moves on.
    start_processing = TriggerDagRunOperator.partial(
        task_id="start_processing",
        trigger_dag_id=PROCESS_DAG_ID,
        logical_date=None,
        skip_when_already_exists=True,
        map_index_template="{{ task.conf['video'] }}",
    ).expand_kwargs(claim_videos().map(process_run_for))
