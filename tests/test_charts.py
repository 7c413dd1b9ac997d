"""Pictures (charlstm.charts): ``info --plot`` draws the learning curves as PNG or SVG."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from charlstm.cli import cli


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


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
