"""``explain --html`` (charlstm.explain_html): the page's parts, its facts, and Chromium rendering it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from click.testing import CliRunner, Result

from charlstm.checkpoint import open_model
from charlstm.cli import cli
from tests.conftest import chromium, write_random_model


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


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
