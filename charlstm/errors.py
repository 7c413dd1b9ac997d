"""The tool's own error types."""

from __future__ import annotations

from charlstm.options import refusal


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


def check_option(name: str, value: object, options: type, label: str | None = None) -> None:
    """Raise :class:`OptionError` unless option ``name`` of ``options`` allows ``value``."""
    why = refusal(name, value, options, label)
    if why:
        raise OptionError(name, why)
