"""Shell completion (bash, zsh, fish)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.shell_completion import ShellComplete
from click.testing import CliRunner

from charlstm import checkpoint as ckpt
from charlstm.cli import cli
from charlstm.completion import complete_tags, model_tags


def complete(shell: str, words: str, cword: int | str) -> str:
    """What ``charlstm``'s completion script receives from Python for the command line ``words``."""
    env = {"_CHARLSTM_COMPLETE": f"{shell}_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    result = CliRunner().invoke(cli, [], env=env, prog_name="charlstm")
    assert result.exit_code == 0, result.output
    return result.stdout


def test_commands_and_options_complete_in_bash() -> None:
    assert complete("bash", "charlstm gen", 1) == "plain,generate\n"
    assert "plain,--prefix" in complete("bash", "charlstm generate --pre", 2)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
@pytest.mark.parametrize("command", ["generate", "export", "blend --words-model"])
def test_model_directories_complete_as_directories_only(shell: str, command: str) -> None:
    option = "" if "--words-model" in command else " --model"
    words = f"charlstm {command}{option} "
    cword = "" if shell == "fish" else len(words.split())  # fish sends the incomplete word itself
    first = complete(shell, words, cword).splitlines()[0]
    assert first in {"dir,", "dir"}  # the shell then offers directories, never files


def _model(path: Path, tags: object) -> Path:
    path.mkdir()
    meta = {"format_version": ckpt.FORMAT_VERSION, "alphabet": list("\nab")}
    if tags is not None:
        meta["tags"] = tags
    (path / ckpt.META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return path


@click.command()
@click.option("--model", "model_dir", type=click.Path(file_okay=False))
@click.option("--tag", shell_complete=complete_tags)
def tagged(model_dir: str | None, tag: str | None) -> None:
    """Stands in for a command with the styles issue's --tag option."""


def tag_completions(args: list[str], incomplete: str) -> list[tuple[str, str | None]]:
    items = ShellComplete(tagged, {}, "charlstm", "_CHARLSTM_COMPLETE").get_completions(args, incomplete)
    return [(item.value, item.help) for item in items]


def test_tags_complete_from_the_models_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listed = _model(tmp_path / "listed", ["nordic", "latin", "Norman"])
    assert tag_completions(["--model", str(listed), "--tag"], "") == [
        ("nordic", None), ("latin", None), ("Norman", None)]  # fmt: skip
    assert tag_completions(["--model", str(listed), "--tag"], "no") == [("nordic", None), ("Norman", None)]
    described = _model(tmp_path / "described", {"nordic": "Scandinavian names", "latin": ""})
    assert tag_completions(["--model", str(described), "--tag"], "") == [
        ("nordic", "Scandinavian names"), ("latin", None)]  # fmt: skip
    # Without --model, the model every command would use: here $CHARLSTM_MODEL.
    monkeypatch.setenv(ckpt.MODEL_ENV, str(described))
    assert tag_completions(["--tag"], "l") == [("latin", None)]
    # Models without tags, missing or damaged ones complete nothing, and never fail.
    assert tag_completions(["--model", str(_model(tmp_path / "plain", None)), "--tag"], "") == []
    assert tag_completions(["--model", str(tmp_path / "missing"), "--tag"], "") == []
    (described / ckpt.META_FILE).write_text("{broken")
    assert tag_completions(["--tag"], "") == []


def test_model_tags_reads_lists_and_objects() -> None:
    assert model_tags({}) == {}
    assert model_tags({"tags": ["a", {"name": "b"}, 3, None]}) == {"a": "", "b": "", "3": ""}
    assert model_tags({"tags": {"a": "first", "b": 2}}) == {"a": "first", "b": ""}
    assert model_tags({"tags": "nonsense"}) == {}

