"""The tool's own error types."""


class CharlstmError(Exception):
    """A problem with the user's data, model or options.

    The CLI prints its message as one line on stderr and exits with status 1.
    """


class OptionError(CharlstmError):
    """One option's value cannot be used (a prefix with foreign letters, lengths that clash).

    ``option`` is the parameter's name (``"min_length"``); the CLI reports it as a usage
    error naming that option (exit status 2), as Click does for its own checks.
    """

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option
