"""Pictures of a model: learning curves, gate heatmaps, next-symbol distributions.

matplotlib is imported inside each function, and figures are made without pyplot (no
GUI backend, no global state): commands that do not draw never pay for it. Figures for
the explain page are rendered to inline SVG text.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from charlstm.checkpoint import HISTORY_FILE
from charlstm.errors import CharlstmError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PLOT_FORMATS = ("png", "svg")
GATE_CMAP = "viridis"  # gates lie in (0, 1)
CELL_CMAP = "RdBu_r"  # the cell state is signed: blue negative, red positive
PROB_CMAP = "RdYlGn"  # red unlikely, green likely (log scale, see probability_colours)
PROB_FLOOR = 1e-2  # probabilities at or below this get the reddest colour


@dataclass(frozen=True)
class History:
    """Per-epoch training record: train and validation NLL per symbol, in nats."""

    epoch: list[int]
    nll: list[float]
    val_nll: list[float]

    @property
    def best(self) -> tuple[int, float] | None:
        """(epoch, validation NLL) of the best epoch, if any epoch was validated."""
        pairs = [(v, e) for e, v in zip(self.epoch, self.val_nll, strict=True) if math.isfinite(v)]
        return (min(pairs)[1], min(pairs)[0]) if pairs else None


def read_history(model_dir: str | Path) -> History:
    """Read ``history.csv`` of a model directory (columns epoch, nll, val_nll at least)."""
    path = Path(model_dir) / HISTORY_FILE
    if not path.is_file():
        raise CharlstmError(f"{path}: missing; the model has no recorded training history")
    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
        history = History(
            [int(float(r["epoch"])) for r in rows],
            [_number(r.get("nll")) for r in rows],
            [_number(r.get("val_nll")) for r in rows],
        )
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise CharlstmError(f"{path}: unreadable or damaged training history ({exc})") from exc
    if not rows:
        raise CharlstmError(f"{path}: the training history has no epochs")
    return history


def _number(text: str | None) -> float:
    return float(text) if text not in (None, "") else math.nan


def _axes(width: float, height: float) -> tuple[Figure, Axes]:
    """A new figure and its axes, outside pyplot: no global state, no GUI backend
    (saving renders with Agg, or the SVG backend for SVG)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots()


def learning_curves_figure(history: History) -> Figure:
    """Train and validation NLL per epoch, the best epoch marked, bits on the right."""
    fig, ax = _axes(7, 3.6)
    ax.plot(history.epoch, history.nll, "o-", ms=3, color="#1f77b4", label="train NLL")
    ax.plot(history.epoch, history.val_nll, "s-", ms=3, color="#ff7f0e", label="validation NLL")
    best = history.best
    if best is not None:
        ax.plot([best[0]], [best[1]], "*", ms=14, color="#d62728", label=f"best: epoch {best[0]}")
        ax.annotate(
            f"{best[1]:.3f} nats",
            best,
            textcoords="offset points",
            xytext=(0, 12),
            ha="center",
            color="#d62728",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("NLL per symbol (nats)")
    bits = ax.secondary_yaxis("right", functions=(lambda n: n / math.log(2), lambda b: b * math.log(2)))
    bits.set_ylabel("bits per symbol")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    ax.set_title("Learning curves: lower is better; a widening gap means overfitting", fontsize=10)
    return fig


def plot_learning_curves(model_dir: str | Path, out: str | Path) -> Path:
    """Draw ``model_dir``'s learning curves into ``out`` (PNG or SVG by its extension)."""
    out = Path(out)
    kind = out.suffix.lower().lstrip(".")
    if kind not in PLOT_FORMATS:
        raise CharlstmError(f"{out}: cannot tell the picture format; use .png or .svg")
    fig = learning_curves_figure(read_history(model_dir))
    try:
        fig.savefig(out, format=kind, dpi=150)
    except OSError as exc:
        raise CharlstmError(f"{out}: cannot save: {exc.strerror or exc}") from exc
    return out


def figure_svg(fig: Figure, salt: str) -> str:
    """``fig`` as an ``<svg>`` element to inline in HTML; ``salt`` keeps element ids
    of different figures on one page apart."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def heatmap_figure(
    values: np.ndarray, units: Sequence[int], columns: Sequence[str], signed: bool, label: str
) -> Figure:
    """A [units, steps] heatmap with unit numbers on the left and symbols read below.

    Gates (``signed`` False) use a 0..1 scale; the cell state a scale symmetric
    about 0. Each cell shows its value when the grid is small enough to read.
    """
    rows, steps = values.shape
    fig, ax = _axes(0.36 * steps + 1.6, 0.27 * rows + 0.9)
    if signed:
        limit = max(float(np.abs(values).max()), 1e-6)
        mesh = ax.pcolormesh(values, cmap=CELL_CMAP, vmin=-limit, vmax=limit)
    else:
        mesh = ax.pcolormesh(values, cmap=GATE_CMAP, vmin=0.0, vmax=1.0)
    ax.invert_yaxis()
    ax.set_yticks(np.arange(rows) + 0.5, [f"unit {u}" for u in units], fontsize=9)
    ax.set_xticks(np.arange(steps) + 0.5, list(columns), fontsize=10)
    ax.tick_params(length=0)
    ax.set_xlabel("symbol read at each step", fontsize=8)
    if rows * steps <= 400:
        for (r, s), v in np.ndenumerate(values):
            light = abs(v) / limit > 0.6 if signed else v < 0.55
            ax.text(s + 0.5, r + 0.5, _short(v), ha="center", va="center",
                    fontsize=7.5, color="white" if light else "black")  # fmt: skip
    fig.colorbar(mesh, ax=ax, label=label, fraction=0.04, pad=0.02)
    return fig


def _short(value: float) -> str:
    """One decimal without the leading zero: .7, -.3, 1.0, 12.4."""
    text = f"{value:.1f}"
    if text in ("0.0", "-0.0"):
        return "0"
    return text.replace("0.", ".", 1) if text.lstrip("-").startswith("0.") else text


def distribution_figure(
    probs: np.ndarray, symbols: Sequence[str], targets: Sequence[int], contexts: Sequence[str]
) -> Figure:
    """p(next symbol): one row per step (labelled with the context read), one column per
    symbol, the symbol that came boxed in red."""
    from matplotlib.colors import PowerNorm
    from matplotlib.patches import Rectangle

    steps, vocab = probs.shape
    width = max(len(c) for c in contexts)
    fig, ax = _axes(0.3 * vocab + 0.09 * width + 1.6, 0.3 * steps + 1.0)
    mesh = ax.pcolormesh(probs, cmap="Blues", norm=PowerNorm(0.5, vmin=0.0, vmax=1.0))
    ax.invert_yaxis()
    ax.set_xticks(np.arange(vocab) + 0.5, list(symbols), fontsize=10)
    ax.set_yticks(np.arange(steps) + 0.5, list(contexts), fontsize=10, family="monospace")
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.tick_params(length=0)
    ax.set_xlabel("next symbol", fontsize=9)
    ax.set_ylabel("read so far", fontsize=9)
    for t, target in enumerate(targets):
        ax.add_patch(Rectangle((target, t), 1, 1, fill=False, edgecolor="#d62728", linewidth=2))
    fig.colorbar(mesh, ax=ax, label="probability", fraction=0.03, pad=0.01, ticks=[0, 0.05, 0.2, 0.5, 1])
    return fig


def probability_colours(probs: Sequence[float]) -> list[str]:
    """A CSS colour for each probability: red (<= 0.01) through yellow (0.1) to green (1), log scale."""
    import matplotlib

    cmap = matplotlib.colormaps[PROB_CMAP]
    low = math.log10(PROB_FLOOR)
    return [
        matplotlib.colors.to_hex(cmap(min(1.0, max(0.0, (math.log10(max(p, 1e-300)) - low) / -low))))
        for p in probs
    ]
