"""The alphabet: folding, encoding and decoding, and malformed alphabets."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charlstm.alphabet import EOS, Alphabet, fold
from charlstm.errors import CharlstmError

ALPHABET = Alphabet()
letters = st.text(alphabet=string.ascii_lowercase, max_size=40)


def test_default_alphabet_is_end_marker_then_a_to_z() -> None:
    assert ALPHABET.symbols[0] == EOS
    assert ALPHABET.letters == string.ascii_lowercase
    assert len(ALPHABET) == 27


@pytest.mark.parametrize(
    ("raw", "folded"),
    [("Zoë", "zoe"), ("Beyoncé", "beyonce"), ("ÅSA", "asa"), ("Straße", "strasse"), ("ﬁona", "fiona")],
)
def test_fold_lowercases_and_strips_accents(raw: str, folded: str) -> None:
    assert fold(raw) == folded


def test_encode_wraps_name_in_end_markers() -> None:
    assert ALPHABET.encode("abz") == [0, 1, 2, 26, 0]
    assert ALPHABET.encode_letters("abz") == [1, 2, 26]
    with pytest.raises(CharlstmError, match="'-'"):
        ALPHABET.encode("ann-marie")
    with pytest.raises(CharlstmError):
        ALPHABET.encode("a\nb")  # the end marker is not a letter


@settings(deadline=None)
@given(letters)
def test_encode_decode_round_trip(name: str) -> None:
    ids = ALPHABET.encode(name)
    assert ids[0] == ids[-1] == 0
    assert len(ids) == len(name) + 2
    assert all(0 < i < len(ALPHABET) for i in ids[1:-1])
    assert ALPHABET.decode(ids) == name
    assert ALPHABET.decode(ALPHABET.encode_letters(name)) == name


@settings(deadline=None)
@given(st.text(max_size=30))
def test_any_text_folds_then_encodes_or_raises_charlstm_error(text: str) -> None:
    name = fold(text)
    if ALPHABET.invalid(name):
        with pytest.raises(CharlstmError, match="outside the alphabet"):
            ALPHABET.encode(name)
    else:
        assert ALPHABET.decode(ALPHABET.encode(name)) == name


@settings(deadline=None)
@given(letters)
def test_folding_leaves_stored_names_alone(name: str) -> None:
    assert fold(name) == name


@settings(deadline=None)
@given(st.permutations(string.ascii_lowercase))
def test_json_round_trip_keeps_symbol_order(letters_order: list[str]) -> None:
    alphabet = Alphabet([EOS, *letters_order])
    assert Alphabet.from_json(alphabet.to_json()) == alphabet


@pytest.mark.parametrize(
    ("symbols", "message"),
    [
        ([], "must start with the end-of-name"),
        (["a", EOS], "must start with the end-of-name"),
        ([EOS, "a", "a"], "must not repeat"),
        ([EOS, "ab"], "single characters"),
        ([EOS, 1], "single characters"),
        ({"a": 1}, "list of symbols"),
        (None, "list of symbols"),
    ],
)
def test_malformed_alphabets_raise_charlstm_error(symbols: object, message: str) -> None:
    with pytest.raises(CharlstmError, match=message):
        Alphabet.from_json(symbols)
