"""Shell completion (bash, zsh, fish): commands, options, model directories and tags."""

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
@pytest.mark.parametrize("command", ["generate", "score", "blend --words-model"])
def test_model_directories_complete_as_directories_only(shell: str, command: str) -> None:
    option = "" if "--words-model" in command else " --model"
    words = f"charlstm {command}{option} "
    cword = "" if shell == "fish" else len(words.split())  # fish sends the incomplete word itself
    first = complete(shell, words, cword).splitlines()[0]
    assert first in {"dir,", "dir"}  # the shell then offers directories, never files


def _model(path: Path, tags: list[str] | None) -> Path:
    path.mkdir()
    meta = {"format_version": ckpt.FORMAT_VERSION, "alphabet": list("\nab")}
    if tags is not None:
        meta["tags"] = tags
        meta["tag_counts"] = {tag: 10 * (i + 1) for i, tag in enumerate(tags)}
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
        ("nordic", "10 training names"),
        ("latin", "20 training names"),
        ("Norman", "30 training names"),
    ]
    assert [v for v, _ in tag_completions(["--model", str(listed), "--tag"], "no")] == ["nordic", "Norman"]
    # Without --model, the model every command would use: here $CHARLSTM_MODEL.
    monkeypatch.setenv(ckpt.MODEL_ENV, str(listed))
    assert tag_completions(["--tag"], "l") == [("latin", "20 training names")]
    # Models without tags, missing or damaged ones complete nothing, and never fail.
    assert tag_completions(["--model", str(_model(tmp_path / "plain", None)), "--tag"], "") == []
    assert tag_completions(["--model", str(tmp_path / "missing"), "--tag"], "") == []
    (listed / ckpt.META_FILE).write_text("{broken")
    assert tag_completions(["--tag"], "") == []


def test_the_real_tag_options_complete_the_bundled_models_tags() -> None:
    for command in ("generate", "score Anna", "explain Anna", "evaluate x.txt"):
        words = f"charlstm {command} --tag "
        assert "plain,female" in complete("bash", words, len(words.split())).splitlines()


def test_model_tags_lists_tags_in_id_order_with_their_counts(tmp_path: Path) -> None:
    assert model_tags(ckpt.read_meta(_model(tmp_path / "plain", None))) == {}
    meta = ckpt.read_meta(_model(tmp_path / "tagged", ["b", "a"]))
    assert model_tags(meta) == {"b": "10 training names", "a": "20 training names"}
