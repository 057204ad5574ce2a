"""The process DAG run by `dag.test()`, each step's command line replaced by a stand-in.

What is checked is the DAG's side of the CLI contract: the argv each task renders from the
run's params, one job id for every task and try, a retried score, and names-only XCom.
"""

import json
import re
import sys
from datetime import timedelta
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.models.dagrun import DagRun
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from sqlalchemy import select

from videostyle.defaults import DEFAULT_CRF
from videostyle_airflow import local_step
from videostyle_airflow.config import PROCESS_DAG_ID
from videostyle_airflow.ids import job_id_for_run

pytestmark = pytest.mark.airflow

# Publish's result line, as the CLI prints it: every name with its URI, the report's figures.
RESULT = {
    "output": "clip.mp4/scream.mp4",
    "preview": "clip.mp4/scream.png",
    "report": "clip.mp4/scream.json",
    "container": "videos-out",
    "output_uri": "az://videos-out/clip.mp4/scream.mp4",
    "preview_uri": "az://videos-out/clip.mp4/scream.png",
    "report_uri": "az://videos-out/clip.mp4/scream.json",
    "job": "job",
    "frames": 50,
    "fps": "24000/1001",
    "width": 192,
    "height": 108,
    "duration_s": 2.085,
    "style": "scream",
    "strength": 1.0,
    "sha256": "0" * 64,
    "bytes": 1000,
}


class StandInSteps:
    """Records each step's (step, args, ranks); exits with the code `exit_code` picks."""

    def __init__(self, exit_code: Any) -> None:
        self.calls: list[tuple[str, list[str], int]] = []
        self.exit_code = exit_code

    def __call__(self, step: str, args: list[str], *, ranks: int = 1) -> list[str]:
        self.calls.append((step, list(args), ranks))
        tries = sum(call[0] == step for call in self.calls)
        printed = json.dumps(RESULT) if step == "publish" else f"{step} done"
        code = self.exit_code(step, tries)
        return [sys.executable, "-c", f"print({printed!r}); raise SystemExit({code})"]


def run_process_dag(
    monkeypatch: pytest.MonkeyPatch, steps: StandInSteps, conf: dict[str, Any]
) -> DagRun:
    monkeypatch.setattr(local_step, "step_argv", steps)
    dag = DagBag().dags[PROCESS_DAG_ID]
    dag.get_task("score").retry_delay = timedelta(0)  # the test need not wait for the retry
    run: DagRun = dag.test(run_conf=conf)
    return run


def xcoms_of(run: DagRun) -> dict[tuple[str, str], Any]:
    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id)
        )
        return {(row.task_id, row.key): XComModel.deserialize_value(row) for row in rows}


def task_states(run: DagRun) -> dict[str, tuple[str | None, int]]:
    with create_session() as session:
        tis = session.merge(run).get_task_instances(session=session)
        return {ti.task_id: (ti.state, ti.try_number) for ti in tis}


@pytest.mark.usefixtures("airflow_env")
def test_steps_render_their_argv_and_share_one_job(monkeypatch: pytest.MonkeyPatch) -> None:
    # Scoring loses a rank on its first try, as a preempted node would.
    steps = StandInSteps(lambda step, tries: 1 if (step, tries) == ("score", 1) else 0)

    run = run_process_dag(
        monkeypatch,
        steps,
        # The form's fields the chosen model does not take (style_image) are left out.
        {"video": "clips/my cat.mp4", "style": "scream", "style_image": "x.jpg", "ranks": 3},
    )

    assert run.state == DagRunState.SUCCESS
    job = job_id_for_run(run.run_id)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", job)
    assert steps.calls == [
        (
            "preprocess",
            [
                "--job",
                job,
                "--model",
                "multistyle26",
                "--options",
                '{"style": "scream", "strength": 1.0}',
                "--crf",
                str(DEFAULT_CRF),
                "--ranks",
                "3",
                "--temporal",
                "False",
                "--",
                "clips/my cat.mp4",
            ],
            1,
        ),
        ("score", ["--job", job], 3),
        ("score", ["--job", job], 3),  # the retry resumes the same job
        ("stitch", ["--job", job], 1),
        ("publish", ["--job", job], 1),
    ]
    assert task_states(run)["score"] == (TaskInstanceState.SUCCESS, 2)
    # Names only, and only publish's: what it wrote.
    # The extra links' own XComs (`_link_*`) aside: test_publication checks them.
    xcoms = {k: v for k, v in xcoms_of(run).items() if not k[1].startswith("_link_")}
    assert xcoms == {("publish", "return_value"): RESULT}


@pytest.mark.usefixtures("airflow_env")
def test_a_bad_input_fails_the_run_without_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = StandInSteps(lambda step, tries: 3 if step == "preprocess" else 0)

    run = run_process_dag(monkeypatch, steps, {"video": "not-a-video.txt"})

    assert run.state == DagRunState.FAILED
    assert [call[0] for call in steps.calls] == ["preprocess"]
    states = task_states(run)
    assert states["preprocess"] == (TaskInstanceState.FAILED, 1)
    assert states["publish"][0] == TaskInstanceState.UPSTREAM_FAILED
