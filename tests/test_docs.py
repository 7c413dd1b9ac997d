"""README.md and --help stay true to the CLI (in the spirit of sqlite-utils' test_docs.py)."""

from __future__ import annotations

import ast
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


def _python_blocks(section: str) -> list[str]:
    """The ```python blocks of one ``## section`` of README.md."""
    start = README.index(f"\n## {section}\n")
    end = README.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", README[start:end], re.S)


def test_the_python_api_examples_in_the_readme_run_as_written(tmp_path: Path) -> None:
    import subprocess
    import sys

    blocks = _python_blocks("Python API")
    assert len(blocks) >= 2
    for block in blocks:
        done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, f"{block}\n{done.stderr[-3000:]}"
        assert done.stdout.strip()
    first = subprocess.run([sys.executable, "-c", blocks[0]], cwd=tmp_path, capture_output=True, text=True)
    lines = first.stdout.splitlines()
    assert lines[0] == "['female', 'male', 'surname']"
    assert all(name.startswith("El") for name in ast.literal_eval(lines[1]))  # tag="female", prefix="el"
    assert (tmp_path / "pets" / "model.json").is_file()
