"""``explain``, ``explain --html`` (rendered in headless Chromium), ``info --plot`` and
``blend --explain``."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from conftest import write_random_model

from charlstm.checkpoint import open_model
from charlstm.cli import cli

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(*args: str, env: dict | None = None, color: bool = False, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, color=color, input=input)


def explain_json(model: Path, name: str, *extra: str) -> dict:
    result = run("explain", name, "--model", str(model), "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", ["Anna", "Zoë", "xqzzy", "a"])
def test_steps_add_up_to_score(random_model_dir: Path, name: str) -> None:
    data = explain_json(random_model_dir, name, "--top", "4")
    scored = json.loads(run("score", name, "--model", str(random_model_dir), "--json").stdout)
    assert data["name"] == name
    assert abs(data["log_prob"] - scored["log_prob"]) < 1e-4
    steps = data["steps"]
    letters = data["letters"]
    assert len(steps) == len(letters) + 1
    assert [s["symbol"] for s in steps] == [*letters, "\n"]
    assert [s["context"] for s in steps] == [letters[:t] for t in range(len(steps))]
    assert math.fsum(s["log_prob"] for s in steps) == pytest.approx(data["log_prob"], abs=1e-6)
    for step in steps:
        assert step["prob"] == pytest.approx(math.exp(step["log_prob"]), abs=1e-6)
        assert step["surprisal_bits"] == pytest.approx(-step["log_prob"] / math.log(2), abs=1e-4)
        others = [a["prob"] for a in step["alternatives"]]
        assert len(others) == 4 and others == sorted(others, reverse=True)
        assert step["symbol"] not in [a["symbol"] for a in step["alternatives"]]
        # rank 1 means no other symbol is likelier; otherwise the likeliest other one is.
        assert (step["rank"] == 1) == (others[0] <= step["prob"])


def test_distribution_is_the_models(random_model_dir: Path) -> None:
    from charlstm.explain import explain_name
    from charlstm.npmodel import log_softmax

    model = open_model(random_model_dir)
    explanation = explain_name(model.lm(), model.alphabet, "Emma", top=3)
    ids = model.alphabet.encode("emma")
    expected = np.exp(log_softmax(model.lm().logits(np.array([ids[:-1]])))[0])
    np.testing.assert_allclose(explanation.probs, expected, atol=1e-6)
    np.testing.assert_allclose(explanation.probs.sum(axis=1), 1.0, atol=1e-6)
    ranks = [int((row > row[t]).sum()) + 1 for row, t in zip(expected, ids[1:], strict=True)]
    assert [s.rank for s in explanation.steps] == ranks


def test_text_table_colours_only_on_a_terminal(random_model_dir: Path) -> None:
    model = str(random_model_dir)
    plain = run("explain", "Olivia", "--model", model, "--top", "2")
    assert plain.exit_code == 0
    assert "\x1b[" not in plain.stdout  # not a terminal: no colours
    lines = plain.stdout.splitlines()
    rows = [line for line in lines if re.match(r"\s+\d+\s+\^", line)]
    assert len(rows) == len("olivia") + 1
    assert rows[0].split()[:3] == ["1", "^", "o"] and rows[-1].split()[:3] == ["7", "^olivia", "$"]
    score = run("score", "Olivia", "--model", model).stdout.split("\t")
    assert lines[-1].startswith(f"total: log_prob {float(score[3]):.4f} nats")
    coloured = run("explain", "Olivia", "--model", model, "--top", "2", color=True)
    assert "\x1b[3" in coloured.stdout  # a terminal: green/yellow/red
    assert ANSI.sub("", coloured.stdout) == plain.stdout
    no_color = run("explain", "Olivia", "--model", model, "--top", "2", color=True, env={"NO_COLOR": "1"})
    assert no_color.stdout == plain.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [(["Br4d"], "is not a name in a-z"), ([" "], "is not a name"), (["Anna", "--top", "0"], "--top")],
)
def test_bad_input_is_a_usage_error(random_model_dir: Path, args: list[str], message: str) -> None:
    result = run("explain", *args, "--model", str(random_model_dir))
    assert result.exit_code == 2
    assert message in result.output and "Error:" in result.output
    assert "Traceback" not in result.output


def test_html_page_without_history_and_two_layers(tmp_path: Path) -> None:
    model = write_random_model(tmp_path / "deep", hidden=(16, 8))
    page = tmp_path / "page.html"
    result = run("explain", "Brad", "--model", str(model), "--html", str(page))
    assert result.exit_code == 0, result.output
    assert f"wrote {page}" in result.stderr
    assert "total: log_prob" in result.stdout  # the table still goes to stdout
    html = page.read_text(encoding="utf-8")
    for layer, hidden in ((1, 16), (2, 8)):
        for gate in "ifoc":
            assert f'id="heatmap-{layer}-{gate}"' in html
        assert f"of its {hidden} units" in html
    assert html.count('<ul class="notes">') == 2 and "forgets most sharply" in html
    assert 'id="learning-curves-missing"' in html and "history.csv: missing" in html
    assert html.count('class="step-dist"') == len("brad") + 1
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)  # nothing from the network
    assert "<script src" not in html and "<link" not in html


def test_page_facts_are_what_info_prints(random_model_dir: Path) -> None:
    import html

    from charlstm.explain import explain_name
    from charlstm.explain_html import render_page

    info = json.loads(run("info", "--model", str(random_model_dir), "--json").stdout)
    model = open_model(random_model_dir)
    page = render_page(model, explain_name(model.lm(), model.alphabet, "anna", 3))
    facts = page[page.index('id="facts"') :]
    for key, value in info.items():
        shown = ", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
        assert f'data-key="{key}">{html.escape(shown, quote=False)}<' in facts, key


def test_most_active_units_move_most() -> None:
    from charlstm.explain_html import most_active_units

    cell = np.zeros((4, 5))
    cell[:, 3] = [0.1, -0.9, 0.8, 0.0]  # changes by 0.1 + 1.0 + 1.7 + 0.8
    cell[:, 1] = [2.0, 2.0, 2.0, 2.0]  # one big write, then kept
    assert most_active_units(cell, 2) == [3, 1]


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium with its own profile directory (runs may overlap)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("chromium is missing: `make test` installs Debian's chromium")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
    command = [browser, *flags, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def test_html_page_in_a_real_browser(trained_model_dir: Path, tmp_path: Path) -> None:
    """Headless Chromium renders the page: not blank, and every part is in the DOM."""
    import matplotlib.image

    page = tmp_path / "brangelina.html"
    result = run("explain", "Brangelina", "--model", str(trained_model_dir), "--html", str(page))
    assert result.exit_code == 0, result.output
    shot = tmp_path / "shot.png"
    chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri())
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    not_white = (pixels < 0.94).any(axis=2).mean()
    assert 0.15 < not_white < 0.95 and pixels.std() > 0.1  # drawn, not blank, not one colour
    dom = chromium(tmp_path / "profile", "--dump-dom", page.as_uri()).stdout
    for part in ["distribution-heatmap", "step-distributions", "learning-curves", "facts", "name"]:
        assert re.search(rf'id="{part}"', dom), part
    for gate in "ifoc":
        figure = re.search(rf'id="heatmap-1-{gate}".*?</figure>', dom, re.S)
        assert figure and "<svg" in figure.group(0) and "unit " in figure.group(0), gate
    curves = re.search(r'id="learning-curves".*?</figure>', dom, re.S).group(0)
    assert "<svg" in curves and "validation NLL" in curves and "train NLL" in curves
    assert dom.count('class="step-dist"') == len("brangelina") + 1
    assert dom.count('class="letter') == len("brangelina") + 1


def test_info_plot_png_svg_and_bad_extension(trained_model_dir: Path, tmp_path: Path) -> None:
    import matplotlib.image

    png, svg = tmp_path / "curves.png", tmp_path / "curves.svg"
    for path in (png, svg):
        result = run("info", "--model", str(trained_model_dir), "--plot", str(path))
        assert result.exit_code == 0, result.output
        assert "best_val_nll" in result.stdout  # info still prints its facts
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (matplotlib.image.imread(png)[..., :3] < 0.9).any(axis=2).mean() > 0.02
    assert "<svg" in svg.read_text() and "validation NLL" in svg.read_text()
    bad = run("info", "--model", str(trained_model_dir), "--plot", str(tmp_path / "curves.pdf"))
    assert bad.exit_code == 2 and "must end in .png or .svg" in bad.output


def test_info_plot_needs_a_history(random_model_dir: Path, tmp_path: Path) -> None:
    result = run("info", "--model", str(random_model_dir), "--plot", str(tmp_path / "c.png"))
    assert result.exit_code == 1
    assert "history.csv: missing" in result.output and "Traceback" not in result.output
    assert result.stdout == ""  # nothing printed before the error
    assert not (tmp_path / "c.png").exists()


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


def test_light_commands_import_no_drawing_or_tensorflow(random_model_dir: Path, tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from charlstm.cli import cli\n"
        "def call(*args):\n"
        "    try:\n"
        "        cli(list(args), prog_name='charlstm')\n"
        "    except SystemExit as exit:\n"
        "        assert not exit.code, args\n"
        "call('--help'); call('blend', 'Brad', 'Angelina'); call('explain', 'Anna', '-m', sys.argv[1])\n"
        "print('LIGHT', [m for m in ('matplotlib', 'jinja2', 'tensorflow', 'keras') if m in sys.modules])\n"
        "call('explain', 'Anna', '-m', sys.argv[1], '--html', sys.argv[2])\n"
        "print('HTML', [m for m in ('tensorflow', 'keras') if m in sys.modules])\n"
    )
    page = tmp_path / "anna.html"
    command = [sys.executable, "-c", script, str(random_model_dir), str(page)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "LIGHT []" in out and "HTML []" in out and page.is_file()
