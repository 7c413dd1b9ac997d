"""``charlstm explain NAME --html FILE``: one self-contained page about a name and the LSTM.

The page shows the name coloured by the probability of each letter, the distribution
over the next symbol at every step, heatmaps of the input, forget and output gates and
the cell state of each layer's most active units (traced with
:meth:`charlstm.npmodel.NumpyLSTM.trace`), the learning curves and the model's facts.
Styles and charts (inline SVG) are in the file itself: it opens without a network.
jinja2 and matplotlib are imported only here, when a page is drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charlstm import __version__
from charlstm.checkpoint import ModelDir
from charlstm.errors import CharlstmError
from charlstm.explain import END, START, Explanation, shown

TEMPLATE = "explain.html.j2"
TEMPLATES_DIR = Path(__file__).parent / "templates"
MAX_UNITS = 12  # units shown per layer: those whose cell state changes most over the name

GATES = {  # key in the trace: (title, equation, what its values mean)
    "i": (
        "Input gate",
        "i<sub>t</sub> = σ(W<sub>i</sub>x<sub>t</sub> + U<sub>i</sub>h<sub>t−1</sub> + b<sub>i</sub>)",
        "How much of the new candidate g<sub>t</sub> is written into the memory. Near 1: this "
        "symbol matters to the unit and is stored; near 0: the unit ignores it.",
    ),
    "f": (
        "Forget gate",
        "f<sub>t</sub> = σ(W<sub>f</sub>x<sub>t</sub> + U<sub>f</sub>h<sub>t−1</sub> + b<sub>f</sub>)",
        "How much of the previous memory c<sub>t−1</sub> survives this step. Near 1: the unit "
        "keeps what it stored (long-range memory, which a plain RNN loses); near 0: it wipes it.",
    ),
    "o": (
        "Output gate",
        "o<sub>t</sub> = σ(W<sub>o</sub>x<sub>t</sub> + U<sub>o</sub>h<sub>t−1</sub> + b<sub>o</sub>)",
        "How much of the memory is shown, h<sub>t</sub> = o<sub>t</sub> ⊙ tanh(c<sub>t</sub>), to the "
        "prediction and the next layer. Near 0: the unit keeps its memory to itself for now.",
    ),
    "c": (
        "Cell state",
        "c<sub>t</sub> = f<sub>t</sub> ⊙ c<sub>t−1</sub> + i<sub>t</sub> ⊙ g<sub>t</sub>",
        "The memory itself (red positive, blue negative, 0 white). A colour that lasts across "
        "steps is information carried along the name; a sudden change is a write or a reset.",
    ),
}


@dataclass(frozen=True)
class Panel:
    gate: str
    title: str
    equation: str
    caption: str
    svg: str


def most_active_units(cell: np.ndarray, count: int = MAX_UNITS) -> list[int]:
    """The ``count`` units whose cell state moves most over the steps (sum of |c_t - c_{t-1}|)."""
    change = np.abs(np.diff(cell, axis=0, prepend=0.0)).sum(axis=0)
    return [int(u) for u in np.argsort(-change, kind="stable")[:count]]


def gate_panels(model: ModelDir, explanation: Explanation, columns: list[str]) -> list[dict]:
    """For each layer: its size, the units shown and one heatmap panel per gate."""
    from charlstm.charts import figure_svg, heatmap_figure

    ids = model.alphabet.encode(explanation.letters)[:-1]  # the symbols read
    layers = []
    for number, trace in enumerate(model.lm().trace(ids, explanation.tag_id), 1):
        units = most_active_units(trace["c"])
        panels = []
        for gate, (title, equation, caption) in GATES.items():
            values = trace[gate][:, units].T
            label = "cell state c" if gate == "c" else f"{title.lower()} {gate} (0 to 1)"
            fig = heatmap_figure(values, units, columns, signed=gate == "c", label=label)
            svg = figure_svg(fig, salt=f"layer{number}-{gate}")
            panels.append(Panel(gate, title, equation, caption, svg))
        layers.append(
            {
                "number": number,
                "hidden": trace["c"].shape[1],
                "units": units,
                "panels": panels,
                "notes": notable(trace, units, columns),
            }
        )
    return layers


def notable(trace: dict[str, np.ndarray], units: list[int], columns: list[str]) -> list[str]:
    """Plain-language observations about the shown units: where one forgets most
    sharply, which keeps its memory longest, which ends with the strongest memory."""
    f, c = trace["f"][:, units], trace["c"][:, units]
    notes = []
    if len(columns) > 1:
        t, k = np.unravel_index(np.argmin(f[1:]), f[1:].shape)
        t += 1
        notes.append(
            f"Unit {units[k]} forgets most sharply on reading “{columns[t]}” (step {t + 1}): its forget "
            f"gate is {f[t, k]:.2f}, so its memory goes from {c[t - 1, k]:+.2f} to {c[t, k]:+.2f}."
        )
    k = int(np.argmax(f.mean(axis=0)))
    held = int((f[:, k] >= 0.9).sum())
    notes.append(
        f"Unit {units[k]} holds on to its memory best: mean forget gate {f[:, k].mean():.2f}, at least "
        f"0.9 on {held} of {len(columns)} steps."
    )
    k = int(np.argmax(np.abs(c[-1])))
    notes.append(f"At the end of the name, unit {units[k]} holds the strongest memory: c = {c[-1, k]:+.2f}.")
    return notes


def step_views(explanation: Explanation) -> list[dict]:
    """Per step: the context, the actual symbol and bars for it and the likeliest others."""
    from charlstm.charts import probability_colours

    views = []
    for number, step in enumerate(explanation.steps, 1):
        options = sorted([(step.symbol, step.prob), *step.alternatives], key=lambda sp: -sp[1])
        colours = probability_colours([p for _, p in options])
        bars = [
            {
                "symbol": shown(s),
                "prob": p,
                "width": max(0.5, 100 * p),
                "actual": s == step.symbol,
                "colour": c,
            }
            for (s, p), c in zip(options, colours, strict=True)
        ]
        views.append(
            {
                "number": number,
                "context": START + step.context,
                "symbol": shown(step.symbol),
                "prob": step.prob,
                "bits": step.surprisal_bits,
                "rank": step.rank,
                "bars": bars,
            }
        )
    return views


def render_page(model: ModelDir, explanation: Explanation) -> str:
    """The whole page as HTML text."""
    import jinja2

    from charlstm.charts import (
        distribution_figure,
        figure_svg,
        learning_curves_figure,
        probability_colours,
        read_history,
    )

    columns = [START, *explanation.letters]  # the symbol read at each step
    probs = [s.prob for s in explanation.steps]
    letters = [
        {"text": shown(s.symbol), "colour": c, "ink": ink(c), "prob": s.prob, "end": s.symbol == "\n"}
        for s, c in zip(explanation.steps, probability_colours(probs), strict=True)
    ]
    targets = model.alphabet.encode(explanation.letters)[1:]
    symbols = [shown(s) for s in explanation.symbols]
    contexts = [START + s.context for s in explanation.steps]
    dist = figure_svg(distribution_figure(explanation.probs, symbols, targets, contexts), salt="dist")
    try:
        curves = figure_svg(learning_curves_figure(read_history(model.path)), salt="curves")
    except CharlstmError as exc:
        curves, curves_missing = None, str(exc)
    else:
        curves_missing = None
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)
    env.filters["markup"] = lambda text: jinja2.utils.markupsafe.Markup(text)
    return env.get_template(TEMPLATE).render(
        e=explanation,
        bits=-explanation.log_prob / math.log(2),
        letters=letters,
        legend=probability_colours([10 ** (-2 + k / 10) for k in range(21)]),
        steps=step_views(explanation),
        distribution_svg=dist,
        layers=gate_panels(model, explanation, columns),
        curves_svg=curves,
        curves_missing=curves_missing,
        facts=model.summary(),
        start=START,
        end=END,
        version=__version__,
    )


def ink(background: str) -> str:
    """Black or white text, whichever reads better on a ``#rrggbb`` background."""
    r, g, b = (int(background[k : k + 2], 16) / 255 for k in (1, 3, 5))
    return "#111111" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "#ffffff"


def write_explain_html(model: ModelDir, explanation: Explanation, path: str | Path) -> Path:
    """Write the page for ``explanation`` to ``path``."""
    path = Path(path)
    html = render_page(model, explanation)
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise CharlstmError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    return path
