"""Errors that cross the CLI boundary, each with the exit code launchers act on."""


class VideostyleError(Exception):
    """A failure worth retrying: storage, network, a killed process."""

    exit_code = 1


class BadInputError(VideostyleError):
    """The input itself is unusable (not a video, bad style, bad weights): retrying cannot help."""

    exit_code = 3
