"""The input policy for names files (see charlstm.data)."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charlstm import data
from charlstm.alphabet import Alphabet
from charlstm.data import encode_names, load_names, load_names_files, parse_names, split_names
from charlstm.errors import CharlstmError

ALPHABET = Alphabet()


def load(tmp_path: Path, raw: bytes, **kwargs: object):
    path = tmp_path / "in.txt"
    path.write_bytes(raw)
    return load_names(path, ALPHABET, **kwargs)


def test_bom_crlf_accents_case_and_blank_lines(tmp_path: Path) -> None:
    raw = "\ufeffZoë\r\n\r\n  Anna \r\nBEYONCÉ\r\n\n".encode()
    corpus = load(tmp_path, raw)
    assert corpus.names == ["zoe", "anna", "beyonce"]
    assert corpus.skipped == []
    assert corpus.skipped_summary() is None


def test_old_mac_line_endings_are_lines_too(tmp_path: Path) -> None:
    assert load(tmp_path, b"anna\rbob\r").names == ["anna", "bob"]


def test_unusable_lines_are_skipped_with_count_and_line_numbers(tmp_path: Path) -> None:
    lines = ["anna", "ann-marie", "", "o'brien", "x" * 40, "bob", "r2d2", "jo ann", "eve", "7", "zed"]
    corpus = load(tmp_path, "\n".join(lines).encode())
    assert corpus.names == ["anna", "bob", "eve", "zed"]
    assert [s.line for s in corpus.skipped] == [2, 4, 5, 7, 8, 10]
    summary = corpus.skipped_summary()
    assert summary is not None
    assert summary.startswith("skipped 6 line(s) of ")
    assert "symbols outside the alphabet" in summary and "longer than 32 letters" in summary
    assert summary.endswith("line 2, 4, 5, 7, 8, ...")  # a few numbers, not all


def test_line_numbers_count_only_real_line_breaks(tmp_path: Path) -> None:
    # A form feed or NEL inside a line is a bad symbol on that line, not a line break.
    corpus = load(tmp_path, "anna\nbo\x0cb\ncy\u0085d\neve\n".encode())
    assert [s.line for s in corpus.skipped] == [2, 3]


def test_strict_names_the_first_bad_line(tmp_path: Path) -> None:
    with pytest.raises(CharlstmError, match=r"line 3: 'ann-marie' has symbols outside the alphabet: '-'"):
        load(tmp_path, b"anna\nbob\nann-marie\n", strict=True)
    with pytest.raises(CharlstmError, match=r"line 2: 'alexandra' is longer than 4 letters"):
        load(tmp_path, b"anna\nalexandra\n", strict=True, max_length=4)


def test_max_length_counts_folded_letters(tmp_path: Path) -> None:
    corpus = load(tmp_path, "anna\nzoë\nalexandra\n".encode(), max_length=4)
    assert corpus.names == ["anna", "zoe"]
    assert [s.line for s in corpus.skipped] == [3]


def test_a_huge_line_is_shortened_in_messages(tmp_path: Path) -> None:
    with pytest.raises(CharlstmError) as info:
        load(tmp_path, b"anna\n" + b"x" * 100_000 + b"\n", strict=True)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "no usable names"),
        (b"\n\n  \n", "no usable names"),
        (b"123\nann-marie\n", r"no usable names .*skipped 2 line\(s\)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "looks like a binary file"),
        ("anna\n".encode("utf-16"), "is UTF-16 text; save it as UTF-8"),
        (b"anna\nbob\nzo\xeb\n", "line 3 is not valid UTF-8"),
        (b"anna\r\nbob\r\nzo\xeb\r\n", "line 3 is not valid UTF-8"),
    ],
)
def test_unreadable_files_raise_clear_errors(tmp_path: Path, raw: bytes, message: str) -> None:
    with pytest.raises(CharlstmError, match=message):
        load(tmp_path, raw)


def test_an_endless_binary_stream_fails_at_once() -> None:
    with pytest.raises(CharlstmError, match="looks like a binary file"):
        load_names("/dev/zero", ALPHABET)


def test_missing_path_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CharlstmError, match="no such file"):
        load_names(tmp_path / "missing.txt", ALPHABET)
    with pytest.raises(CharlstmError, match="is a directory"):
        load_names(tmp_path, ALPHABET)


name_lines = st.lists(
    st.one_of(
        st.text(alphabet=string.ascii_letters + "éëÅß' -1\t", max_size=12),
        st.text(max_size=8),
    ),
    max_size=12,
)
raw_files = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda lines, sep, bom: (b"\xef\xbb\xbf" if bom else b"") + sep.join(s.encode() for s in lines),
        name_lines,
        st.sampled_from([b"\n", b"\r\n", b"\r"]),
        st.booleans(),
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=raw_files, max_length=st.integers(1, 40), strict=st.booleans())
def test_loader_only_ever_raises_charlstm_error(
    tmp_path: Path, raw: bytes, max_length: int, strict: bool
) -> None:
    try:
        corpus = load(tmp_path, raw, max_length=max_length, strict=strict)
    except CharlstmError as exc:
        assert "\n" not in str(exc)  # one line on stderr
        return
    assert corpus.names
    for name in corpus.names:
        assert 1 <= len(name) <= max_length
        assert set(name) <= set(string.ascii_lowercase)
    assert not (strict and corpus.skipped)


@settings(deadline=None)
@given(st.text(max_size=300))
def test_parse_names_keeps_every_line_accounted_for(text: str) -> None:
    try:
        corpus = parse_names(text, ALPHABET)
    except CharlstmError:
        return
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blank = sum(1 for line in lines if not ALPHABET.normalize(line.strip()))
    assert len(corpus.names) + len(corpus.skipped) + blank == len(lines)
    assert all(1 <= s.line <= len(lines) for s in corpus.skipped)


def test_encode_names_is_flat_int8_with_lengths() -> None:
    flat, lengths = encode_names(["ab", "c"], ALPHABET)
    assert flat.dtype.itemsize == 1
    assert flat.tolist() == [0, 1, 2, 0, 0, 3, 0]
    assert lengths.tolist() == [4, 3]


def test_split_is_seeded_and_rejects_bad_fractions() -> None:
    names = [f"n{c}" for c in string.ascii_lowercase]
    assert split_names(names, 0.2, 3) == split_names(names, 0.2, 3)
    train, val = split_names(names, 0.2, 3)
    assert sorted(train + val) == sorted(names) and len(val) == 5
    with pytest.raises(CharlstmError):
        split_names(names, 1.0, 0)


@given(st.lists(st.text(alphabet="abcxyz-йё", min_size=1, max_size=12), max_size=30))
def test_vectorised_encoding_matches_name_by_name(names: list[str]) -> None:
    alphabet = Alphabet("\nabcxyz-йё")
    flat, lengths = encode_names(names, alphabet)
    assert flat.tolist() == [i for n in names for i in alphabet.encode(n)]
    assert lengths.tolist() == [len(n) + 2 for n in names]


def test_encoding_in_chunks_matches_and_names_the_name_with_a_foreign_symbol(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(data, "_ENCODE_CHUNK", 2)
    names = ["ab", "c", "zz", "y", "abc"]
    alphabet = Alphabet()
    flat, lengths = encode_names(names, alphabet)
    assert flat.tolist() == [i for n in names for i in alphabet.encode(n)]
    assert lengths.tolist() == [4, 3, 4, 3, 5]
    with pytest.raises(CharlstmError, match="'b1' contains symbols outside the alphabet: '1'"):
        encode_names([*names, "b1"], alphabet)


# --- tagged names files (issue 13) ---------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def test_tab_separates_name_and_tag_and_empty_tags_are_untagged(tmp_path: Path) -> None:
    path = write(tmp_path, "in.txt", "Anna\tfemale\nBob\nZoë \t female_2 \nEve\t\nmax\t  \n")
    corpus = load_names(path, ALPHABET)
    assert corpus.names == ["anna", "bob", "zoe", "eve", "max"]
    assert corpus.tags == ["female", None, "female_2", None, None]
    assert corpus.skipped == []
    assert corpus.tag_counts() == {"female": 1, "female_2": 1, None: 3}
    assert corpus.tag_names() == ["female", "female_2"]
    assert corpus.names_with_tag(None) == ["bob", "eve", "max"]


def test_crlf_and_bom_with_tags(tmp_path: Path) -> None:
    corpus = load(tmp_path, "\ufeffanna\tf\r\nbob\tm\r\n\r\ncy\r\n".encode())
    assert corpus.names == ["anna", "bob", "cy"]
    assert corpus.tags == ["f", "m", None]


def test_a_name_may_appear_under_several_tags(tmp_path: Path) -> None:
    corpus = load(tmp_path, b"alex\tmale\nalex\tfemale\nalex\n")
    assert corpus.names == ["alex"] * 3
    assert corpus.tags == ["male", "female", None]
    assert corpus.tag_counts() == {"female": 1, "male": 1, None: 1}


def test_tag_strings_are_shared_not_copied_per_name(tmp_path: Path) -> None:
    corpus = load(tmp_path, "".join(f"{c}{c}\tgroup-1\n" for c in "abcdef" * 3).encode())
    assert len(corpus.names) == 18 and corpus.tag_counts() == {"group-1": 18}
    assert len({id(tag) for tag in corpus.tags}) == 1


@pytest.mark.parametrize("tag", ["fe male", "a/b", "x.y", "b'c", "tag\tmore", "é!"])
def test_bad_tags_are_errors_naming_file_and_line(tmp_path: Path, tag: str) -> None:
    path = write(tmp_path, "tags.txt", f"anna\tf\nbob\t{tag}\n")
    for kwargs in ({}, {"strict": True}):
        with pytest.raises(CharlstmError, match=r"tags\.txt: line 2: tag .* may only hold letters, digits"):
            load_names(path, ALPHABET, **kwargs)


def test_unicode_letters_and_digits_make_valid_tags(tmp_path: Path) -> None:
    assert load(tmp_path, "anna\tженский-2_b\n".encode()).tags == ["женский-2_b"]


def test_bad_names_with_tags_are_still_skipped_or_strict_errors(tmp_path: Path) -> None:
    raw = b"anna\tf\nann-marie\tf\n\tm\nbob\tm\n"
    corpus = load(tmp_path, raw)
    assert corpus.names == ["anna", "bob"] and corpus.tags == ["f", "m"]
    assert [(s.line, s.reason) for s in corpus.skipped] == [
        (2, "symbols outside the alphabet"),
        (3, "a tag without a name"),
    ]
    with pytest.raises(CharlstmError, match=r"line 2: 'ann-marie' has symbols outside the alphabet: '-'"):
        load(tmp_path, raw, strict=True)


def test_load_names_is_unchanged_for_untagged_files(tmp_path: Path) -> None:
    lines = ["anna", "ann-marie", "bob", "x" * 40]
    corpus = load(tmp_path, "\n".join(lines).encode())
    assert corpus.names == ["anna", "bob"] and corpus.tags == [None, None]
    assert corpus.skipped_summary() == (
        f"skipped 2 line(s) of {tmp_path / 'in.txt'} (longer than 32 letters; symbols outside the alphabet): "
        "line 2, 4"
    )


def test_several_files_load_into_one_corpus_with_file_and_line_of_skips(tmp_path: Path) -> None:
    first = write(tmp_path, "a.txt", "anna\tf\nbo-b\ncy\n")
    second = write(tmp_path, "b.txt", "dan\tm\n\neve\n7\n")
    corpus = load_names_files([first, second], ALPHABET)
    assert corpus.names == ["anna", "cy", "dan", "eve"]
    assert corpus.tags == ["f", None, "m", None]
    assert [(s.path, s.line) for s in corpus.skipped] == [(str(first), 2), (str(second), 4)]
    summary = corpus.skipped_summary()
    assert summary is not None
    assert summary.startswith(f"skipped 2 line(s) of {first}, {second} (symbols outside the alphabet): ")
    assert summary.endswith(f"{first} line 2, {second} line 4")


def test_tag_by_file_uses_each_files_stem(tmp_path: Path) -> None:
    female = write(tmp_path, "female.txt", "anna\nalex\nalex\tfemale\n")
    male = write(tmp_path, "male.txt", "bob\nalex\n")
    corpus = load_names_files([female, male], ALPHABET, tag_by_file=True)
    assert corpus.names == ["anna", "alex", "alex", "bob", "alex"]
    assert corpus.tags == ["female", "female", "female", "male", "male"]
    assert corpus.tag_counts() == {"female": 3, "male": 2}
    assert corpus.names_with_tag("male") == ["bob", "alex"]
    untagged = load_names_files([female, male], ALPHABET)
    assert untagged.tags == [None, None, "female", None, None]


def test_tag_by_file_refuses_bad_stems_and_conflicting_line_tags(tmp_path: Path) -> None:
    dotted = write(tmp_path, "names.female.txt", "anna\n")
    with pytest.raises(
        CharlstmError, match=r"names\.female\.txt: the file name 'names\.female' is not a valid tag"
    ):
        load_names_files([dotted], ALPHABET, tag_by_file=True)
    assert load_names_files([dotted], ALPHABET).names == ["anna"]  # fine without tag_by_file
    male = write(tmp_path, "male.txt", "bob\nanna\tfemale\n")
    with pytest.raises(
        CharlstmError, match=r"male\.txt: line 2: tagged 'female', but the file's names are 'male'"
    ):
        load_names_files([male], ALPHABET, tag_by_file=True)


def test_several_files_share_one_derived_alphabet_and_each_must_have_names(tmp_path: Path) -> None:
    first = write(tmp_path, "ru.txt", "Йорк\tcity\n")
    second = write(tmp_path, "el.txt", "Ωmega\n")
    corpus = load_names_files([first, second], None)
    assert corpus.names == ["йорк", "ωmega"] and corpus.tags == ["city", None]
    assert set(corpus.alphabet.letters) == set("йоркωmega")  # tags stay out of the alphabet
    empty = write(tmp_path, "empty.txt", "\n\n")
    with pytest.raises(CharlstmError, match=r"empty\.txt: no usable names"):
        load_names_files([first, empty], None)
    with pytest.raises(CharlstmError, match="no names files given"):
        load_names_files([], ALPHABET)
