"""Shell completion (Click's, for bash, zsh and fish) of model directories and tags.

``--model`` completes directories only: its ``click.Path(file_okay=False)`` type
hands directory completion to the shell. :func:`complete_tags` completes the tags of
the model a command would use, read from ``model.json``'s ``tags``, for ``--tag``.
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem

from charlstm import checkpoint as ckpt
from charlstm.errors import CharlstmError


def model_tags(meta: ckpt.ModelMeta) -> dict[str, str]:
    """A model's tags, in id order, each with a description (its training names)."""
    return {tag: f"{meta.tag_counts.get(tag, 0):,} training names" for tag in meta.tags}


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
