"""The generator page (charlstm.webpage, ``export --format html``), driven in headless Chromium."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from charlstm import checkpoint as ckpt
from charlstm.cli import cli
from tests.conftest import chromium


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


class _PageResults(HTMLParser):
    """The names and scores a generator page wrote into its DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[tuple[str, float]] = []
        self.tags: list[str | None] = []
        self.score: tuple[str, float] | None = None
        self.status = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "li" and "data-log-prob" in a:
            self.names.append((a["data-name"] or "", float(a["data-log-prob"] or "nan")))
            self.tags.append(a.get("data-tag"))
        elif tag == "output" and "data-log-prob" in a:
            self.score = (a["data-name"] or "", float(a["data-log-prob"] or "nan"))
        elif tag == "body":
            self.status = a.get("data-status") or ""


def _browse(page: Path, query: str) -> _PageResults:
    """Load ``page?query`` in headless Chromium and parse the DOM it ends with."""
    # The page generates while it loads, so the DOM dumped after the load event has the names.
    done = chromium(page.parent / "chromium-profile", "--dump-dom", f"{page.as_uri()}?{query}")
    results = _PageResults()
    results.feed(done.stdout)
    assert results.status == "ready", done.stdout[-2000:]
    return results


def test_generator_page_samples_and_scores_like_charlstm_in_chromium(tmp_path: Path) -> None:
    page = tmp_path / "names.html"
    result = run("export", "bundled", str(page))
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")
    assert page.stat().st_size < 2_000_000
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched
    model = ckpt.open_model(ckpt.bundled_model_dir())

    first = _browse(page, "seed=7&n=12&score=Zo%C3%AB")
    names = [name for name, _ in first.names]
    assert len(names) == 12 == len(set(names))
    assert all(name and set(name) <= set(model.alphabet.letters) for name in names)
    # Every shown log-probability is charlstm score's, within 1e-4: a generated name's under
    # the tag it was drawn in, the scored name's (Zoë, folded to zoe) under every tag, weighted.
    from charlstm.evaluation import score_texts

    assert set(first.tags) <= {"female", "male"}  # the bundled model's first-name tags by default
    expected = [score_texts(model, [name], tag)[0] for name, tag in zip(names, first.tags, strict=True)]
    expected += score_texts(model, ["Zoë"])
    assert first.score is not None and first.score[0] == "zoe"
    for (name, shown), s in zip([*first.names, first.score], expected, strict=True):
        assert shown == pytest.approx(s.log_prob, abs=1e-4), name

    # The URL's prefix (folded like charlstm's) and temperature shape the batch.
    shaped = _browse(page, "seed=7&n=5&prefix=Ma&t=0.5")
    assert len(shaped.names) == 5 and all(name.startswith("ma") for name, _ in shaped.names)


def test_page_shows_a_tag_selector_only_for_models_with_tags(random_model_dir: Path) -> None:
    from charlstm.webpage import render_page

    assert "<label hidden>Style" in render_page(ckpt.open_model(random_model_dir))
    html = render_page(ckpt.open_model(ckpt.bundled_model_dir()))  # tagged: female, male, surname
    assert "<label>Style" in html and re.search(r"<option[^>]*>female</option>", html)
