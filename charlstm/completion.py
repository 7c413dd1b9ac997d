"""Shell completion (Click's, for bash, zsh and fish) of model directories and tags.

``--model`` completes directories only: its ``click.Path(file_okay=False)`` type
hands directory completion to the shell. :func:`complete_tags` completes the tags of
the model a command would use, read from ``model.json``'s ``tags`` (a list of names,
or an object from names to descriptions), for a ``--tag`` option.
"""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem

from charlstm import checkpoint as ckpt
from charlstm.errors import CharlstmError


def model_tags(meta: dict[str, Any]) -> dict[str, str]:
    """A model's tags from its ``model.json`` data, each with a description (maybe empty)."""
    tags = meta.get("tags")
    if isinstance(tags, dict):
        return {str(tag): value if isinstance(value, str) else "" for tag, value in tags.items()}
    if isinstance(tags, list):
        names = [t.get("name") if isinstance(t, dict) else t for t in tags]
        return {str(name): "" for name in names if isinstance(name, str | int)}
    return {}


def complete_tags(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Complete a ``--tag`` value from the tags of the model the command line names.

    The model is resolved as every command resolves it (``--model``, then
    ``$CHARLSTM_MODEL``, ``./charlstm-model``, the bundled model); an unreadable
    model completes nothing.
    """
    try:
        path, _ = ckpt.resolve_model_dir(ctx.params.get("model_dir"))
        tags = model_tags(ckpt.read_meta(path))
    except (CharlstmError, OSError):
        return []
    start = incomplete.casefold()
    return [
        CompletionItem(tag, help=text or None)
        for tag, text in tags.items()
        if tag.casefold().startswith(start)
    ]
