"""The steps table: each step's command line, and the result line a step ends with."""

import pytest

from videostyle.cli import build_parser
from videostyle.steps.table import STEPS, result_of, step


def test_a_step_runs_as_one_python_process() -> None:
    assert step("stitch").command(["--job", "j"], python="py") == [
        "py",
        "-m",
        "videostyle",
        "stitch",
        "--job",
        "j",
    ]


def test_a_step_under_mpi_runs_one_process_per_rank() -> None:
    assert step("score").command(["--job", "j"], python="py", mpirun="mpi", ranks=3) == [
        "mpi",
        "-n",
        "3",
        "py",
        "-m",
        "mpi4py",
        "-m",
        "videostyle",
        "score",
        "--job",
        "j",
    ]


def test_an_unknown_step_is_named_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown step 'train'; the steps are preprocess, score"):
        step("train")


def test_the_cli_has_a_subcommand_for_each_step_and_run() -> None:
    parser = build_parser()
    for name in STEPS:
        assert parser.parse_args([name, "--job", "j", *(["v.mp4"] if name == "preprocess" else [])])
    assert parser.parse_args(["run", "in.mp4", "out.mp4"]).step == "run"


def test_the_result_is_the_last_json_object_line() -> None:
    lines = ['{"output": "a.mp4"}', "progress job: 1/1", '{"output": "b.mp4"}', "[1, 2]", "done"]
    assert result_of(lines) == {"output": "b.mp4"}
    with pytest.raises(ValueError, match="without a JSON result line"):
        result_of(["[1]", "plain"])
