"""Reading names files and encoding them compactly as integer ids.

Input policy: UTF-8 (a BOM is fine), LF or CRLF line endings, one name per line.
A line may carry a tag after a tab, ``name<TAB>tag`` (no tab, or an empty tag:
untagged); a tag holds letters, digits, ``-`` and ``_`` only, anything else is an
error naming the file and line. Each name is stripped and folded by the alphabet
(the default a-z alphabet folds case and accents, Zoë -> zoe; others fold case
only); blank lines are skipped.
Lines that still hold symbols outside the alphabet, or are longer than
``max_length``, are skipped and reported (``strict=True`` makes them an error).
Binary files, UTF-16, text that is not UTF-8 (naming the line), directories, missing
paths and files with no usable name raise :class:`CharlstmError`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from charlstm.alphabet import EOS, Alphabet, OutsideAlphabet, derive
from charlstm.errors import CharlstmError
from charlstm.options import MAX_NAME_LENGTH

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_ENCODE_CHUNK = 1 << 16  # names encoded at once


@dataclass
class Skipped:
    """A line of the input that was left out, and why (``path``: its file)."""

    line: int
    reason: str
    path: str = ""


@dataclass
class Corpus:
    """The usable names of one or more files, in file order (duplicates kept).

    ``tags`` is parallel to ``names``: each name's tag, or None if untagged (a tag
    string is shared by all its names). ``path`` names the file(s) for messages.
    """

    path: str
    names: list[str]
    skipped: list[Skipped] = field(default_factory=list)
    alphabet: Alphabet = field(default_factory=Alphabet)
    tags: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.tags:
            self.tags = [None] * len(self.names)

    def tag_counts(self) -> dict[str | None, int]:
        """How many names each tag has (None: untagged), tags sorted, None last."""
        counts = Counter(self.tags)
        return {tag: counts[tag] for tag in sorted(counts, key=lambda t: (t is None, t or ""))}

    def tag_names(self) -> list[str]:
        """The distinct tags, sorted."""
        return sorted({tag for tag in self.tags if tag is not None})

    def names_with_tag(self, tag: str | None) -> list[str]:
        """The names carrying ``tag`` (None: the untagged ones), in corpus order."""
        return [name for name, t in zip(self.names, self.tags, strict=True) if t == tag]

    def skipped_summary(self, show: int = 5) -> str | None:
        """One line telling how many lines were skipped (with their files and first
        line numbers), or None."""
        if not self.skipped:
            return None
        reasons = sorted({s.reason for s in self.skipped})
        head = f"skipped {len(self.skipped)} line(s) of {self.path} ({'; '.join(reasons)}): "
        more = ", ..." if len(self.skipped) > show else ""
        if all(s.path in ("", self.path) for s in self.skipped):
            return head + "line " + ", ".join(str(s.line) for s in self.skipped[:show]) + more
        by_file: dict[str, list[str]] = {}
        for s in self.skipped[:show]:
            by_file.setdefault(s.path, []).append(str(s.line))
        return head + ", ".join(f"{path} line {', '.join(lines)}" for path, lines in by_file.items()) + more


def read_text(path: str | Path) -> str:
    """Read a UTF-8 text file, with a clear error for anything else."""
    p = Path(path)
    if not p.exists():
        raise CharlstmError(f"{p}: no such file")
    if p.is_dir():
        raise CharlstmError(f"{p}: is a directory, expected a text file with one name per line")
    chunks: list[bytes] = []
    try:
        with p.open("rb") as fh:  # in chunks, so that /dev/zero or a huge binary fails fast
            while chunk := fh.read(1 << 20):
                if not chunks and chunk.startswith((b"\xff\xfe", b"\xfe\xff")):
                    raise CharlstmError(f"{p}: is UTF-16 text; save it as UTF-8")
                if b"\0" in chunk:
                    raise CharlstmError(f"{p}: looks like a binary file, expected UTF-8 text")
                chunks.append(chunk)
    except OSError as exc:
        raise CharlstmError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    raw = b"".join(chunks)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = len(_LINE_BREAK.split(raw[: exc.start].decode("utf-8", "replace")))
        raise CharlstmError(f"{p}: line {line} is not valid UTF-8") from exc


def parse_names(
    text: str,
    alphabet: Alphabet | None,
    *,
    path: str = "<text>",
    max_length: int = MAX_NAME_LENGTH,
    strict: bool = False,
    file_tag: str | None = None,
) -> Corpus:
    """Normalize each line of ``text`` into a name (and tag), skipping what cannot be used.

    Lines end at LF, CRLF or CR (and nothing else, so line numbers match an editor's).
    ``alphabet=None`` derives it from the names (see :func:`charlstm.alphabet.derive`).
    ``file_tag`` tags every name; a line tagged otherwise is an error.
    """
    fields = split_tags(text, path)
    alphabet = derive(name for name, _ in fields) if alphabet is None else alphabet
    return _parse_fields(fields, alphabet, path, max_length, strict, file_tag)


def split_tags(text: str, path: str) -> list[tuple[str, str | None]]:
    """Each line of ``text`` as (stripped name part, tag or None); bad tags raise."""
    fields: list[tuple[str, str | None]] = []
    interned: dict[str, str] = {}
    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        name, _, tag = line.partition("\t")
        tag = tag.strip()
        if tag and not is_valid_tag(tag):
            raise CharlstmError(
                f"{path}: line {number}: tag {_preview(tag)} may only hold letters, digits, '-' and '_'"
            )
        fields.append((name.strip(), interned.setdefault(tag, tag) if tag else None))
    return fields


def is_valid_tag(tag: str) -> bool:
    """Whether ``tag`` is a non-empty run of letters, digits, ``-`` and ``_``."""
    return bool(tag) and all(ch.isalnum() or ch in "-_" for ch in tag)


def _parse_fields(
    fields: list[tuple[str, str | None]],
    alphabet: Alphabet,
    path: str,
    max_length: int,
    strict: bool,
    file_tag: str | None,
) -> Corpus:
    """The corpus of one file's (name part, tag) lines."""
    corpus = Corpus(path=path, names=[], alphabet=alphabet)
    for number, (raw, tag) in enumerate(fields, start=1):
        if file_tag is not None and tag not in (None, file_tag):
            raise CharlstmError(
                f"{path}: line {number}: tagged {tag!r}, but the file's names are {file_tag!r}"
            )
        shown = _preview(raw)
        try:
            name = alphabet.fold_checked(raw)
        except OutsideAlphabet as exc:
            reason = "symbols outside the alphabet"
            detail = f"line {number}: {shown} has symbols outside the alphabet: " + ", ".join(
                repr(c) for c in exc.symbols[:10]
            )
        else:
            if not name and tag is None:
                continue  # a blank line
            if not name:
                reason, detail = "a tag without a name", f"line {number}: tag {tag!r} has no name before it"
            elif len(name) > max_length:
                reason = f"longer than {max_length} letters"
                detail = f"line {number}: {shown} is longer than {max_length} letters"
            else:
                corpus.names.append(name)
                corpus.tags.append(tag if file_tag is None else file_tag)
                continue
        if strict:
            raise CharlstmError(f"{path}: {detail}")
        corpus.skipped.append(Skipped(number, reason, path))
    if not corpus.names:
        why = f"; {corpus.skipped_summary()}" if corpus.skipped else ""
        raise CharlstmError(f"{path}: no usable names (one name per line, letters {alphabet.letters}){why}")
    return corpus


def _preview(line: str, width: int = 40) -> str:
    """``repr`` of a line, shortened so that a huge line keeps a message on one screen."""
    return repr(line) if len(line) <= width else repr(line[:width]) + "..."


def load_names(
    path: str | Path,
    alphabet: Alphabet | None,
    *,
    max_length: int = MAX_NAME_LENGTH,
    strict: bool = False,
) -> Corpus:
    """Read and normalize a names file (see the module docstring); ``alphabet=None`` derives it."""
    return parse_names(read_text(path), alphabet, path=str(path), max_length=max_length, strict=strict)


def load_names_files(
    paths: Sequence[str | Path],
    alphabet: Alphabet | None,
    *,
    max_length: int = MAX_NAME_LENGTH,
    strict: bool = False,
    tag_by_file: bool = False,
) -> Corpus:
    """Read several names files into one corpus, in the order given.

    ``tag_by_file`` tags every name of a file with the file's stem (``female.txt`` ->
    ``female``). ``alphabet=None`` derives one alphabet from all the names. Each file
    must leave usable names; skipped lines keep their file and line number.
    """
    if not paths:
        raise CharlstmError("no names files given")
    tags = [file_tag(p) if tag_by_file else None for p in paths]
    fields = [split_tags(read_text(p), str(p)) for p in paths]
    if alphabet is None:
        alphabet = derive(name for lines in fields for name, _ in lines)
    parts = [
        _parse_fields(lines, alphabet, str(p), max_length, strict, tag)
        for p, lines, tag in zip(paths, fields, tags, strict=True)
    ]
    return Corpus(
        path=", ".join(str(p) for p in paths),
        names=[name for part in parts for name in part.names],
        skipped=[s for part in parts for s in part.skipped],
        alphabet=alphabet,
        tags=[tag for part in parts for tag in part.tags],
    )


def file_tag(path: str | Path) -> str:
    """The tag that ``tag_by_file`` gives a file's names: its stem (``female.txt`` -> ``female``)."""
    stem = Path(path).stem
    if not is_valid_tag(stem):
        raise CharlstmError(
            f"{path}: the file name {stem!r} is not a valid tag (letters, digits, '-' and '_' only)"
        )
    return stem


def encode_names(names: list[str], alphabet: Alphabet) -> tuple[np.ndarray, np.ndarray]:
    """Encode names as one flat int array of ``EOS name EOS`` ids plus their lengths.

    This is the compact in-memory form of a corpus: one byte-sized id per symbol,
    never a one-hot array.
    """
    dtype = np.int8 if len(alphabet) <= 127 else np.int32
    lengths = np.fromiter((len(n) + 2 for n in names), dtype=np.int32, count=len(names))
    flat = np.empty(int(lengths.sum()), dtype)
    # Per-name Python lists of ids cost ~100 bytes a symbol on million-name files, so
    # chunks of names are mapped at once through a code point -> id table (-1: not in
    # the alphabet). EOS ends a name and starts the next: a chunk is EOS, the names
    # joined by two EOS, EOS.
    codes = np.array([ord(s) for s in alphabet.symbols])
    table = np.full(int(codes.max()) + 2, -1, np.int32)
    table[codes] = np.arange(len(codes))
    done = 0
    for start in range(0, len(names), _ENCODE_CHUNK):
        chunk = names[start : start + _ENCODE_CHUNK]
        text = EOS + (2 * EOS).join(chunk) + EOS
        points = np.frombuffer(text.encode("utf-32-le"), np.uint32)
        ids = table[np.minimum(points, len(table) - 1)]
        if (ids < 0).any() or np.count_nonzero(ids == 0) != 2 * len(chunk):
            for name in chunk:  # raises, naming the first name that does not fit
                alphabet.encode(name)
        flat[done : done + len(ids)] = ids
        done += len(ids)
    return flat, lengths


T = TypeVar("T")


def split_names(names: list[T], val_fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """Seeded random split into (train, validation)."""
    if not 0 <= val_fraction < 1:
        raise CharlstmError("the validation fraction must be in [0, 1)")
    order = np.random.default_rng(seed).permutation(len(names))
    n_val = round(len(names) * val_fraction)
    if val_fraction > 0 and len(names) >= 2:
        n_val = min(max(n_val, 1), len(names) - 1)
    val = [names[i] for i in order[:n_val]]
    train = [names[i] for i in order[n_val:]]
    return train, val
