"""The alphabet: folding, encoding and decoding, and malformed alphabets."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from charlstm.alphabet import EOS, Alphabet, derive, fold
from charlstm.cli import cli
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


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


CYRILLIC = [
    "Йорк", "Анна", "Мария", "Анна-Мария", "Ёжик", "Сергей", "Андрей", "Алексей", "Николай",
    "Дмитрий", "Зоя", "Юлия", "Яков", "Эмма", "Фёдор", "Жанна", "Цветана", "Шура", "Щукин",
    "Чеслав", "Майя", "Ирина", "Ольга", "Татьяна", "Василий", "Пётр", "Геннадий", "Борис",
]  # fmt: skip


def test_derived_alphabet_keeps_letters_whole() -> None:
    alphabet = derive(["Йорк", "Zoë", "Анна-Мария", "\tx"])
    assert alphabet.symbols[0] == "\n" and list(alphabet.symbols[1:]) == sorted(alphabet.symbols[1:])
    assert {"й", "ë", "-", "м"} <= set(alphabet.symbols) and "\t" not in alphabet.symbols
    assert alphabet.normalize("ЙОРК") == "йорк"  # not "иорк": no accent stripping
    assert alphabet.normalize("Zoe\u0308") == "zoë"  # decomposed input is composed (NFC)
    assert Alphabet().normalize("Zoë") == "zoe"  # the default a-z alphabet still folds accents


@pytest.fixture(scope="module")
def cyrillic_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cyrillic")
    (root / "ru.txt").write_text("\n".join(CYRILLIC) + "\n", encoding="utf-8")
    model = root / "model"
    result = run(
        "train", str(root / "ru.txt"), "--model", str(model), "--alphabet", "auto", "--epochs", "2",
        "--hidden", "16", "--layers", "1", "--batch-size", "8", "--val-fraction", "0.2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return model


def test_auto_alphabet_is_stored_and_used_by_every_command(cyrillic_model: Path) -> None:
    m = ["--model", str(cyrillic_model)]
    alphabet = json.loads(run("info", *m, "--json").stdout)["alphabet"]
    assert "й" in alphabet and "ё" in alphabet and "-" in alphabet
    names = run("generate", *m, "--n", "30", "--seed", "1", "--allow-duplicates").stdout.split()
    assert len(names) == 30
    assert all(set(n.lower()) <= set("-абвгдеёжзийклмнопрстуфхцчшщъыьэюя") for n in names)
    assert any(set(n.lower()) & set("абвгдеёжзийклмнопрстуфхцчшщэюя") for n in names)
    prefixed = run("generate", *m, "--n", "5", "--seed", "2", "--prefix", "ЙО").stdout.split()
    assert len(prefixed) == 5 and all(n.startswith("Йо") for n in prefixed)
    scored = run("score", *m, "Фёдор", "Анна-Мария")
    assert scored.exit_code == 0 and scored.stdout.startswith("Фёдор\t")
    ru = cyrillic_model.parent / "ru.txt"
    evaluated = run("evaluate", *m, str(ru), "--json")
    assert evaluated.exit_code == 0 and json.loads(evaluated.stdout)["names"] == len(CYRILLIC)


def test_auto_alphabet_model_refuses_letters_outside_it(cyrillic_model: Path) -> None:
    m = ["--model", str(cyrillic_model)]
    result = run("generate", *m, "--prefix", "Ивq")
    assert result.exit_code == 2 and "letters outside the model's alphabet" in result.stderr
    assert "'q'" in result.stderr
    result = run("score", *m, "Anna")
    assert result.exit_code == 2 and "'Anna' is not a name in the model's alphabet" in result.stderr
