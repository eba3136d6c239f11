"""The one error type the CLI reports as a single line (no traceback) with a non-zero exit."""


class CliError(Exception):
    """A user-facing failure: the message says what went wrong and what to do."""
