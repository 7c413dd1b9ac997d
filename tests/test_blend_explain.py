"""``blend --explain`` (charlstm.blend_explain): each blend's parts and its strongest features."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner, Result

from charlstm.checkpoint import open_model
from charlstm.cli import cli


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def blend_json(*args: str) -> dict:
    result = run("blend", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_blend_explain_marks_parts_and_overlap() -> None:
    explained = blend_json("Brad", "Angelina", "--top", "5", "--explain")["blends"]
    plain = blend_json("Brad", "Angelina", "--top", "5")["blends"]
    assert [(b["blend"], b["score"]) for b in explained] == [(b["blend"], b["score"]) for b in plain]
    first = explained[0]
    assert first["blend"] == "Brangelina"
    assert first["parts"] == "Bra(d) + Angelina -> Br[a]ngelina"
    assert (first["from_word1"], first["from_word2"], first["overlap"]) == ("Bra", "angelina", "a")
    for b in explained:
        text = b["blend"]
        assert re.sub(r"[\[\]]", "", b["parts"].split(" -> ")[1]) == text
        assert text.startswith(b["from_word1"]) and text.lower().endswith(b["from_word2"].lower())
        assert "brad".startswith(b["from_word1"].lower()) and "angelina".endswith(b["from_word2"].lower())
        shared = len(b["from_word1"]) + len(b["from_word2"]) - len(text)
        assert len(b["overlap"]) == max(shared, 0)
    smog = blend_json("smoke", "fog", "--top", "1", "--explain")["blends"][0]
    assert smog["parts"] == "smo(ke) + (f)og -> sm[o]g"


def test_blend_explain_features_are_the_strongest_terms() -> None:
    from charlstm.blend_explain import describe_feature
    from charlstm.blend_features import FEATURES
    from charlstm.blending import Blender
    from charlstm.checkpoint import bundled_model_dir

    blender = Blender.open(open_model(bundled_model_dir()), open_model(bundled_model_dir("words")))
    cands, matrix = blender.features([("britain", "exit")])
    w = blender.weights
    terms = (matrix - w.mean) / w.scale * w.weight
    np.testing.assert_allclose(terms.sum(axis=1), w.score(matrix), atol=1e-9)
    text = [c.blend for c in cands[0]]
    for b in blend_json("Britain", "Exit", "--top", "3", "--explain")["blends"]:
        row = terms[text.index(b["blend"].lower())]
        strongest = np.argsort(-np.abs(row))[:3]
        assert [f["feature"] for f in b["top_features"]] == [FEATURES[k] for k in strongest]
        for f, k in zip(b["top_features"], strongest, strict=True):
            assert f["contribution"] == pytest.approx(row[k], abs=1e-5)
            assert f["description"] == describe_feature(FEATURES[k]) != FEATURES[k]
    assert all(describe_feature(f) != f for f in FEATURES)


def test_blend_explain_text_and_misuse() -> None:
    result = run("blend", "Brad", "Angelina", "--top", "3", "--explain")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Brangelina\t" + lines[0].split("\t")[1] + "\tBra(d) + Angelina -> Br[a]ngelina"
    assert len(lines) == 3 * 4 and all(re.match(r"\s+[+-]\d+\.\d{3}\s+\w+", line) for line in lines[1:4])
    both = run("blend", "fog", "smoke", "--top", "2", "--explain", "--both-orders")
    assert both.exit_code == 0 and "smo(ke) + (f)og -> sm[o]g" in both.stdout
    misuse = run("blend", "--pairs", "-", "--explain", input="brad angelina\n")
    assert misuse.exit_code == 2 and "--explain works with WORD1 WORD2" in misuse.output
