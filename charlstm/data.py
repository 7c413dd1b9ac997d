"""Reading names files and encoding them compactly as integer ids.

Input policy: UTF-8 (a BOM is fine), LF or CRLF line endings, one name per line.
Each line is stripped and folded by the alphabet (the default a-z alphabet folds
case and accents, Zoë -> zoe; others fold case only); blank lines are skipped.
Lines that still hold symbols outside the alphabet, or are longer than
``max_length``, are skipped and reported (``strict=True`` makes them an error).
Binary files, UTF-16, text that is not UTF-8 (naming the line), directories, missing
paths and files with no usable name raise :class:`CharlstmError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from charlstm.alphabet import EOS, Alphabet, OutsideAlphabet, derive
from charlstm.errors import CharlstmError
from charlstm.options import MAX_NAME_LENGTH

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_ENCODE_CHUNK = 1 << 16  # names encoded at once


@dataclass
class Skipped:
    """A line of the input that was left out, and why."""

    line: int
    reason: str


@dataclass
class Corpus:
    """The usable names of a file, in file order (duplicates kept)."""

    path: str
    names: list[str]
    skipped: list[Skipped] = field(default_factory=list)
    alphabet: Alphabet = field(default_factory=Alphabet)

    def skipped_summary(self, show: int = 5) -> str | None:
        """One line telling how many lines were skipped, or None."""
        if not self.skipped:
            return None
        reasons = sorted({s.reason for s in self.skipped})
        lines = ", ".join(str(s.line) for s in self.skipped[:show])
        more = ", ..." if len(self.skipped) > show else ""
        return (
            f"skipped {len(self.skipped)} line(s) of {self.path} ({'; '.join(reasons)}): line {lines}{more}"
        )


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
) -> Corpus:
    """Normalize each line of ``text`` into a name, skipping what cannot be used.

    Lines end at LF, CRLF or CR (and nothing else, so line numbers match an editor's).
    ``alphabet=None`` derives it from ``text`` (see :func:`charlstm.alphabet.derive`).
    """
    lines = _LINE_BREAK.split(text)
    alphabet = derive(lines) if alphabet is None else alphabet
    corpus = Corpus(path=path, names=[], alphabet=alphabet)
    for number, line in enumerate(lines, start=1):
        shown = _preview(line.strip())
        try:
            name = alphabet.fold_checked(line.strip())
        except OutsideAlphabet as exc:
            reason = "symbols outside the alphabet"
            detail = f"line {number}: {shown} has symbols outside the alphabet: " + ", ".join(
                repr(c) for c in exc.symbols[:10]
            )
        else:
            if not name:
                continue
            if len(name) <= max_length:
                corpus.names.append(name)
                continue
            reason = f"longer than {max_length} letters"
            detail = f"line {number}: {shown} is longer than {max_length} letters"
        if strict:
            raise CharlstmError(f"{path}: {detail}")
        corpus.skipped.append(Skipped(number, reason))
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


def split_names(names: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
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
