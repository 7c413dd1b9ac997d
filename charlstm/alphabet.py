"""The symbol alphabet: case-folding, accent-folding and integer encoding of names.

A name is modelled as the symbol sequence ``EOS + letters + EOS``; the end-of-name
symbol (a newline) has id 0 and both starts and ends every name.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Iterable, Sequence

from charlstm.errors import CharlstmError

EOS = "\n"
DEFAULT_SYMBOLS = EOS + string.ascii_lowercase


def fold(text: str) -> str:
    """Case-fold ``text`` and strip accents (Zoë -> zoe, Beyoncé -> beyonce)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fold_case(text: str) -> str:
    """Case-fold ``text`` keeping its letters whole (Йорк -> йорк, Zoë -> zoë), NFC composed."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def derive(lines: Iterable[str]) -> Alphabet:
    """The alphabet of every symbol in ``lines`` (case-folded, NFC), sorted, end marker first.

    Control characters (tabs and the like) are left out, so lines holding them are
    later skipped like any symbol outside the alphabet.
    """
    seen: set[str] = set()
    for line in lines:
        seen.update(fold_case(line.strip()))
    return Alphabet([EOS, *sorted(ch for ch in seen if unicodedata.category(ch) != "Cc")])


class Alphabet:
    """An ordered set of symbols; index 0 is always the end-of-name marker."""

    def __init__(self, symbols: Sequence[str] = DEFAULT_SYMBOLS) -> None:
        symbols = list(symbols)
        if not all(isinstance(s, str) and len(s) == 1 for s in symbols):
            raise CharlstmError("an alphabet's symbols must be single characters")
        if not symbols or symbols[0] != EOS:
            raise CharlstmError("an alphabet must start with the end-of-name symbol '\\n'")
        if len(set(symbols)) != len(symbols):
            raise CharlstmError("an alphabet must not repeat symbols")
        self.symbols: tuple[str, ...] = tuple(symbols)
        self._index = {s: i for i, s in enumerate(self.symbols)}
        # Only an all-ASCII alphabet (the default a-z) strips accents: folding Cyrillic
        # or accented alphabets that way would turn й into и and é into e.
        self.folds_accents = all(s.isascii() for s in self.symbols)

    def __len__(self) -> int:
        return len(self.symbols)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Alphabet) and self.symbols == other.symbols

    def __hash__(self) -> int:
        return hash(self.symbols)

    def __repr__(self) -> str:
        return f"Alphabet({''.join(self.symbols)!r})"

    @property
    def letters(self) -> str:
        """The symbols a name may contain (everything but the end marker)."""
        return "".join(self.symbols[1:])

    def describe(self) -> str:
        """The letters for messages: ``a-z`` for the default alphabet."""
        if self.symbols == tuple(DEFAULT_SYMBOLS):
            return "a-z"
        return f"the model's alphabet {self.letters!r}"

    def normalize(self, text: str) -> str:
        """Fold ``text`` the way names are stored: case always, accents for ASCII alphabets."""
        return fold(text) if self.folds_accents else fold_case(text)

    def invalid(self, name: str) -> list[str]:
        """Symbols of ``name`` (already normalized) that are not in the alphabet."""
        return sorted({ch for ch in name if ch not in self._index or ch == EOS})

    def fold_checked(self, text: str) -> str:
        """``text`` folded like training names (:meth:`normalize`), every symbol checked.

        Every command reads user text through this; :class:`OutsideAlphabet` names the
        symbols outside the alphabet (and the alphabet: ``a-z`` for the default one).
        """
        folded = self.normalize(text)
        bad = self.invalid(folded)
        if bad:
            raise OutsideAlphabet(text, bad, self)
        return folded

    def encode(self, name: str) -> list[int]:
        """Ids of ``EOS + name + EOS``; ``name`` must be normalized."""
        bad = self.invalid(name)
        if bad:
            raise CharlstmError(f"{name!r} contains symbols outside the alphabet: {_show(bad)}")
        return [0, *(self._index[ch] for ch in name), 0]

    def encode_letters(self, letters: str) -> list[int]:
        """Ids of the letters alone, with no end markers."""
        return self.encode(letters)[1:-1]

    def decode(self, ids: Iterable[int]) -> str:
        """Letters for ``ids``; end markers are dropped."""
        return "".join(self.symbols[i] for i in ids if i != 0)

    def to_json(self) -> list[str]:
        """The symbols as a JSON list (``model.json``'s ``alphabet``)."""
        return list(self.symbols)

    @classmethod
    def from_json(cls, symbols: object) -> Alphabet:
        """The alphabet a JSON value describes; :class:`CharlstmError` if it is malformed."""
        if not isinstance(symbols, list | str):
            raise CharlstmError("an alphabet must be a list of symbols")
        return cls(symbols)


class OutsideAlphabet(CharlstmError):
    """Text holds symbols outside an alphabet; ``symbols`` lists them."""

    def __init__(self, text: str, symbols: list[str], alphabet: Alphabet) -> None:
        super().__init__(f"{text!r} has letters outside {alphabet.describe()}: {_show(symbols)}")
        self.text, self.symbols, self.alphabet = text, symbols, alphabet

    def letters(self) -> str:
        """The message without the text: ``letters outside a-z: '1'``."""
        return f"letters outside {self.alphabet.describe()}: {_show(self.symbols)}"


def _show(chars: Iterable[str]) -> str:
    return ", ".join(repr(c) for c in chars)
