"""One video blob in, one styled video blob out: preprocess → score (MPI) → stitch → publish.

Each task launches one step of the videostyle CLI and passes only names on; the steps hand
their data over through blob storage. Triggered by videostyle_watch, or by hand from the UI.
"""

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Param, chain, get_current_context, task

from videostyle.defaults import BUILTIN_MODEL, DEFAULT_CRF, DEFAULT_RANKS, DEFAULT_STYLE
from videostyle.models.registry import MODELS
from videostyle.models.styles import STYLE_NAMES
from videostyle.steps.table import STEPS, Step, step_args
from videostyle_airflow.claims import record_run_claim
from videostyle_airflow.config import (
    MAX_ACTIVE_RUNS,
    OWNER,
    PROCESS_DAG_ID,
    SCORING_POOL,
    WATCH_DAG_ID,
    inputs_location,
    outputs_location,
    styles_location,
)
from videostyle_airflow.ids import job_id_for_run
from videostyle_airflow.launchers import step_task
from videostyle_airflow.looks import model_options
from videostyle_airflow.publication import PUBLISHED_VIDEOS

# Rendered per task from the run id: every try of every task of a run names the same job,
# so a retried score resumes from the units already finished.
JOB = "{{ run_id | job_id }}"
# A step under MPI (score) runs on the run's ranks, in the scoring pool; a lost rank or node is
# the usual failure, and a retry redoes only unfinished units.
MPI_TASK: dict[str, Any] = {
    "ranks": "{{ params.ranks }}",
    "pool": SCORING_POOL,
    "retries": 3,
    "retry_delay": timedelta(seconds=15),
}


def task_settings(step: Step) -> dict[str, Any]:
    """What Airflow adds to a step's task: its time limit, MPI_TASK for a step under MPI, and
    for the step with a result line (publish) the asset each published video becomes."""
    settings: dict[str, Any] = {"execution_timeout": step.time_limit}
    if step.mpi:
        settings |= MPI_TASK
    if step.result_line:
        settings["outlets"] = [PUBLISHED_VIDEOS]
    return settings


DOC_MD = f"""
### Style one video

**Trigger** (top right) and fill the form:

- **Video**: the blob's name in **`{inputs_location().url}`**, e.g. `clip.mp4` or
  `shoots/day1/clip.mov`. Upload it first (Azure portal, `az storage blob upload`, Storage
  Explorer); uploads there are styled in the default style anyway by `{WATCH_DAG_ID}`.
- **Model** and its look: `multistyle26` in one of 26 **Styles**; `painting` in the look of a
  **Style image** you uploaded to **`{styles_location().url}`** (its blob name); `checkpoint`
  with a fast_neural_style `.pth`; `anonymize` blurs (or fills, **Faces**) every face in
  every frame; fields another model does not take are ignored.
- **Strength** 0..1 (0 keeps the input), **Ranks** (MPI processes scoring in parallel), **CRF**.
- **Steady (temporal)**: each frame blended with the previous one carried along the motion, so
  the style's texture does not flicker (not for `anonymize`).

An upload to the inputs container chooses its own look in blob metadata
(`az storage blob upload ... --metadata model=painting style_image=starry.jpg strength=0.8`).

**Watch it**: the grid shows each step; the `score` task's log prints each rank's and the
job's frames done / total, frames/s and ETA at least every 10 s.

**The result**: `{outputs_location().url}/<video>/<style>.mp4`, with a preview `.png` (source |
styled) and the report `.json` (written last). The `publish` task's links **Styled video**,
**Preview** and **Report** open them in the browser; the Assets view lists every styled video.

**When it fails**: a bad input or parameter fails for good with the reason as the task's error
(XCom `failure`; the input's quarantine report is in the work container); anything else is
retried, and a retried `score` redoes only the units not finished.
"""

with DAG(
    dag_id=PROCESS_DAG_ID,
    description="Style one video from the inputs container into the outputs container",
    schedule=None,
    # On from the start: it runs only when triggered, and a paused DAG's runs never start.
    is_paused_upon_creation=False,
    max_active_runs=MAX_ACTIVE_RUNS,
    dagrun_timeout=timedelta(hours=6),
    tags=["videostyle", "video"],
    default_args={
        "owner": OWNER,
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
    },
    user_defined_filters={"job_id": job_id_for_run, "model_options": model_options},
    params={
        "video": Param(
            type="string",
            minLength=1,
            title="Video",
            description="Blob name of the video in the inputs container",
        ),
        "model": Param(
            BUILTIN_MODEL,
            type="string",
            enum=list(MODELS),
            title="Model",
            description="multistyle26: one of 26 built-in styles; painting: the look of a style "
            "image; checkpoint: a TransformerNet .pth; anonymize: every face blurred",
        ),
        "style": Param(
            DEFAULT_STYLE,
            type="string",
            enum=list(STYLE_NAMES),
            title="Style",
            description="multistyle26's style",
        ),
        # Optional: only the model that takes it needs it (null, so the form does not require it).
        "style_image": Param(
            None,
            type=["null", "string"],
            title="Style image",
            description=f"painting: a JPEG, PNG or WebP in {styles_location().url}, by blob name",
        ),
        "checkpoint": Param(
            None,
            type=["null", "string"],
            title="Checkpoint",
            description="checkpoint: a pytorch/examples fast_neural_style .pth, path or az:// URL",
        ),
        "mode": Param(
            "blur",
            type="string",
            enum=["blur", "fill"],
            title="Faces",
            description="anonymize: blur each face, or fill it with black",
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
        "temporal": Param(
            False,
            type="boolean",
            title="Steady (temporal)",
            description="Blend each frame with the previous one carried along the motion, so "
            "the style's texture does not flicker (about +15% scoring time; not for anonymize)",
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
    doc_md=DOC_MD,
) as dag:

    @task(execution_timeout=timedelta(minutes=5))
    def record_claim() -> None:
        """Claim the video's current version for this run, however it was started (by hand
        too): the watch then never processes that version again."""
        context = get_current_context()
        record_run_claim(video=context["params"]["video"], run_id=context["run_id"])

    steps = [
        step_task(
            step.name,
            task_id=step.name,
            args=step_args(
                step,
                job=JOB,
                video="{{ params.video }}",
                model="{{ params.model }}",
                options="{{ params | model_options }}",
                crf="{{ params.crf }}",
                ranks="{{ params.ranks }}",
                temporal="{{ params.temporal }}",
            ),
            **task_settings(step),
        )
        for step in STEPS.values()
    ]
    chain(record_claim(), *steps)
