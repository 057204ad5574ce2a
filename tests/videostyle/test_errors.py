"""The CLI's failure line, and finding its reason again in a step's output."""

import pytest

from videostyle.errors import (
    FAILURE_FORMAT,
    BadInputError,
    BadParameterError,
    failure_reason,
    one_line,
)


def test_a_bad_parameter_is_a_bad_input_never_retried() -> None:
    assert issubclass(BadParameterError, BadInputError)
    assert BadParameterError.exit_code == BadInputError.exit_code == 3


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (  # as the CLI logs it
            "2026-01-01 10:00:00,123 videostyle ERROR "
            + FAILURE_FORMAT % ("preprocess", "'clip.mp4' is empty (0 bytes)"),
            "'clip.mp4' is empty (0 bytes)",
        ),
        ("[1] score failed: the plan is unusable ", "the plan is unusable"),  # mpirun -prepend-rank
        ("publish failed: x", "x"),
        ("2026 azure.core WARNING Request failed: 503", None),  # not a step
        ("Conversion failed!", None),
        ("rescore failed: x", None),
    ],
)
def test_the_failure_line_is_found_by_its_step(line: str, reason: str | None) -> None:
    assert failure_reason(line) == reason


def test_a_reason_on_several_lines_is_said_on_one() -> None:
    error = BadInputError(
        "'a.mp4' is not a readable video: ffprobe exited 1:\n  moov atom not found\n"
    )
    assert (
        one_line(error)
        == "'a.mp4' is not a readable video: ffprobe exited 1: | moov atom not found"
    )
