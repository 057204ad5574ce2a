"""One video blob in, one stylized video blob out: preprocess → score (MPI) → stitch → publish.

Each task launches one step of the videostyle CLI and passes only names on; the steps hand
their data over through blob storage. Triggered by videostyle_watch, or by hand from the UI.
"""

from datetime import timedelta

from airflow.sdk import DAG, Param, chain

from videostyle.defaults import DEFAULT_CRF, DEFAULT_RANKS, DEFAULT_STYLE
from videostyle_airflow.config import MAX_ACTIVE_RUNS, OWNER, PROCESS_DAG_ID, SCORING_POOL
from videostyle_airflow.ids import job_id_for_run
from videostyle_airflow.launchers import step_task

# Rendered per task from the run id: every try of every task of a run names the same job,
# so a retried score resumes from the units already finished.
JOB = "{{ run_id | job_id }}"

with DAG(
    dag_id=PROCESS_DAG_ID,
    description="Stylize one video from the inputs container into the outputs container",
    schedule=None,
    max_active_runs=MAX_ACTIVE_RUNS,
    dagrun_timeout=timedelta(hours=6),
    tags=["videostyle", "video"],
    default_args={
        "owner": OWNER,
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
    },
    user_defined_filters={"job_id": job_id_for_run},
    params={
        "video": Param(
            type="string",
            minLength=1,
            title="Video",
            description="Blob name of the video in the inputs container",
        ),
        "style": Param(
            DEFAULT_STYLE,
            type="string",
            title="Style",
            description="A style name or index of the built-in model, or a blend like 3:0.5,19:0.5",
        ),
        "strength": Param(
            1.0,
            type="number",
            minimum=0,
            maximum=1,
            title="Strength",
            description="0 keeps the input, 1 applies the style fully",
        ),
        "ranks": Param(
            DEFAULT_RANKS,
            type="integer",
            minimum=1,
            maximum=64,
            title="Ranks",
            description="MPI processes that score the video's units in parallel",
        ),
        "crf": Param(
            DEFAULT_CRF,
            type="integer",
            minimum=0,
            maximum=51,
            title="Quality (CRF)",
            description="H.264 constant rate factor of the output: lower is better and larger",
        ),
    },
    doc_md=__doc__,
) as dag:
    preprocess = step_task(
        "preprocess",
        task_id="preprocess",
        args=[
            "--job",
            JOB,
            "--style",
            "{{ params.style }}",
            "--strength",
            "{{ params.strength }}",
            "--crf",
            "{{ params.crf }}",
            "--ranks",
            "{{ params.ranks }}",
            "--",  # whatever the video's name, it is never read as an option
            "{{ params.video }}",
        ],
        execution_timeout=timedelta(minutes=30),
    )
    score = step_task(
        "score",
        task_id="score",
        args=["--job", JOB],
        ranks="{{ params.ranks }}",
        pool=SCORING_POOL,
        # A lost rank or node is the usual failure; a retry redoes only unfinished units.
        retries=3,
        retry_delay=timedelta(seconds=15),
        execution_timeout=timedelta(hours=4),
    )
    stitch = step_task(
        "stitch", task_id="stitch", args=["--job", JOB], execution_timeout=timedelta(minutes=30)
    )
    publish = step_task(
        "publish", task_id="publish", args=["--job", JOB], execution_timeout=timedelta(minutes=15)
    )
    chain(preprocess, score, stitch, publish)
