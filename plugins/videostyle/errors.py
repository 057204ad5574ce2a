"""Errors that cross the CLI boundary, each with the exit code launchers act on."""

import re

from videostyle.steps.table import STEPS

# The exit code of an unusable input or parameter: retrying cannot help. Every launcher reads
# it from here.
BAD_INPUT_EXIT_CODE = 3


class VideostyleError(Exception):
    """A failure worth retrying: storage, network, a killed process."""

    exit_code = 1


class BadInputError(VideostyleError):
    """The input itself is unusable (not a video, bad weights): retrying cannot help."""

    exit_code = BAD_INPUT_EXIT_CODE


class BadParameterError(BadInputError):
    """A job parameter (style, strength, crf, model) is invalid: the video is not to blame."""


# How the CLI reports a failure, the last line it logs ("<step> failed: <reason>", the reason
# by one_line), and how launchers find that line again in its output to say why a task failed.
FAILURE_FORMAT = "%s failed: %s"
_FAILURE_LINE = re.compile(rf"(?:^|\s)(?:{'|'.join([*STEPS, 'run'])}) failed: (.+)")


def one_line(error: BaseException) -> str:
    """An error's message on one line (ffmpeg's stderr spans several): the log's last line
    then says it all."""
    return " | ".join(line.strip() for line in str(error).splitlines() if line.strip())


def failure_reason(line: str) -> str | None:
    """The reason in the CLI's failure line, None when `line` is not one."""
    match = _FAILURE_LINE.search(line)
    return match[1].strip() if match else None
