"""The tool's own error type."""


class CharlstmError(Exception):
    """A problem with the user's data, model or options.

    The CLI prints its message as one line on stderr and exits with status 1.
    """
