"""README.md and --help stay true to the CLI (in the spirit of sqlite-utils' test_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from charlstm.cli import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _table_commands() -> set[str]:
    """The commands README's command table names (its first column: `charlstm COMMAND ...`)."""
    table = README[README.index("| command | what it does |") :].split("\n\n", 1)[0]
    return set(re.findall(r"^\| `charlstm (\w[\w-]*)", table, re.M))


def test_the_readme_command_table_lists_every_command_and_no_other() -> None:
    assert _table_commands() == set(cli.commands)


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_option_is_documented_in_the_readme_or_shown_in_an_example(name: str) -> None:
    command = cli.commands[name]
    examples = (command.help or "").split("Example", 1)[-1]
    assert "Example" in (command.help or ""), f"{name} --help has no example"
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        long = [opt for opt in param.opts + param.secondary_opts if opt.startswith("--")]
        assert any(opt in README or opt in examples for opt in long), f"charlstm {name} {long[0]}"
