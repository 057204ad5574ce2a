"""The steps table: every step of the pipeline, in order, and what each launcher must know of it.

The CLI, the launchers (local and Kubernetes), the storage credentials, the timings and the
process DAG all read this table; adding a step is a row here and the step's own module.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

# The blob stores a step may be granted (each one container).
Store = Literal["inputs", "work", "outputs", "styles"]


@dataclass(frozen=True)
class Step:
    """One CLI step: `python -m videostyle NAME ARGS`.

    :param name: the CLI subcommand.
    :param help: what the step does, for the CLI's help.
    :param grants: what the step does to each store, as Azure's container SAS permission
        letters (r read, w write, l list); a store left out gets no credential.
    :param mpi: runs under mpirun, one process per rank (`python -m mpi4py` in front).
    :param result_line: its last stdout line is a JSON object, its result (see `result_of`).
    :param job_options: takes the video and the job's options (`videostyle preprocess VIDEO
        --model ... --ranks N`), which it plans the job with; the others take `--job` only.
    :param time_limit: the most one try of the step may take (Airflow's execution_timeout).

    The step's code is the module videostyle.steps.NAME, whose `from_cli(stores, settings,
    args)` the CLI calls with the parsed command line (the job's model and options resolved).
    """

    name: str
    help: str
    grants: Mapping[Store, str]
    mpi: bool = False
    result_line: bool = False
    job_options: bool = False
    time_limit: timedelta = timedelta(minutes=30)

    @property
    def module(self) -> str:
        return f"videostyle.steps.{self.name}"

    def command(
        self, args: Sequence[str], *, python: str, mpirun: str = "mpirun", ranks: int = 1
    ) -> list[str]:
        """The step's command line, on any machine: `python` and `mpirun` are its programs."""
        cli = cli_command(self.name, args, python=python)
        if not self.mpi:
            return cli
        # `python -m mpi4py` turns one rank's uncaught exception into an abort of the whole world.
        return [mpirun, "-n", str(ranks), python, "-m", "mpi4py", *cli[1:]]


def step_args(
    step: Step,
    *,
    job: str,
    video: str,
    model: str,
    options: str,
    crf: str,
    ranks: str,
    temporal: str = "",
) -> list[str]:
    """The step's arguments for one job (strings: Airflow passes templates): `--job JOB`, and
    the video and the job's options for the step that plans the job; `temporal` ("true",
    "false", "" to leave it out) the temporal mode."""
    if not step.job_options:
        return ["--job", job]
    options_args = ["--model", model, "--options", options, "--crf", crf, "--ranks", ranks]
    if temporal:
        options_args += ["--temporal", temporal]
    return ["--job", job, *options_args, "--", video]  # `--`: a video name is never an option


def cli_command(subcommand: str, args: Sequence[str], *, python: str) -> list[str]:
    """`python -m videostyle SUBCOMMAND ARGS`, one process: the CLI's command line."""
    return [python, "-m", "videostyle", subcommand, *args]


# Write includes creating; no step deletes. Asking about a blob that is not there lists (adlfs
# looks for a folder of that name): without `l` a missing blob reads as a refusal, not as
# missing. Preprocess reads a job's style image (the painting model) from styles: a missing one
# must read as missing, a bad input that quarantines the job. Publish reads the outputs for an
# earlier run's report, and writes its timing record to work.
STEPS: Mapping[str, Step] = {
    step.name: step
    for step in (
        Step(
            "preprocess",
            "validate a video blob and plan its job",
            grants={"inputs": "rl", "work": "rwl", "styles": "rl"},
            job_options=True,
        ),
        Step(
            "score",
            "style this rank's units (run under mpirun)",
            grants={"work": "rwl"},
            mpi=True,
            time_limit=timedelta(hours=4),
        ),
        Step(
            "stitch",
            "join the units with the source's timing and audio",
            grants={"work": "rwl"},
        ),
        Step(
            "publish",
            "put the video and its report in the outputs container",
            grants={"work": "rwl", "outputs": "rwl"},
            result_line=True,
            time_limit=timedelta(minutes=15),
        ),
    )
}


def step(name: str) -> Step:
    """The step called `name`; ValueError naming the known ones otherwise."""
    try:
        return STEPS[name]
    except KeyError:
        raise ValueError(f"unknown step {name!r}; the steps are {', '.join(STEPS)}") from None


def result_of(lines: Iterable[str]) -> Any:
    """A step's result: the last of its output `lines` that is a JSON object.

    ValueError when there is none.
    """
    for line in reversed(list(lines)):
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(parsed, dict):
            return parsed
    raise ValueError("the step ended without a JSON result line")
