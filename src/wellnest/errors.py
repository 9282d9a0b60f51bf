"""The two ways a command says no; the CLI turns each into one line and an exit code."""


class WellnestError(Exception):
    """A refusal: the input was understood, but acting on it would be wrong (exit 1)."""

    exit_code = 1


class UsageError(WellnestError):
    """The command line itself is wrong, e.g. an invalid module name (exit 2)."""

    exit_code = 2
