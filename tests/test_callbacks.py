"""Training's callbacks (charlstm.callbacks) on their own, without a training."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from charlstm import checkpoint as ckpt
from charlstm.alphabet import Alphabet
from charlstm.batches import BatchPlan
from charlstm.callbacks import NOVELTY_SAMPLES, EpochReport, StopControl
from charlstm.model import build_model, compile_model
from charlstm.options import Architecture
from tests.conftest import NAMES


def test_a_short_time_limit_is_not_spent_on_one_batch() -> None:
    # A soup member's share of --time-limit can be ten seconds. The first batch, which builds the
    # training graph, took 2.5 of them; the validation graph (forward only) builds far faster.
    now = time.monotonic()
    control = StopControl(now + 7.5, 200, 100.0, SimpleNamespace(save_seconds=None), val_passes=2)
    control.set_model(SimpleNamespace(stop_training=False))
    control.batch_started = now - 2.5
    control.on_train_batch_end(0)
    assert control.first_batch == pytest.approx(2.5, abs=0.1)
    assert control.reason is None and not control.model.stop_training
    control.deadline = time.monotonic() + 2.0  # and near the end it does stop
    control.on_train_batch_begin(1)
    control.on_train_batch_end(1)
    assert control.reason == "time limit" and control.model.stop_training


def test_the_epoch_line_gives_the_share_of_new_names_among_many_samples() -> None:
    model = build_model(27, Architecture(hidden=8, layers=1))  # untrained: its samples are mostly new
    compile_model(model, 1e-3, 1.0, 0.0)
    meta = ckpt.ModelMeta(alphabet=Alphabet(), architecture=Architecture(hidden=8, layers=1))
    plan = BatchPlan(NAMES, Alphabet(), 8, seed=0)

    def report(known: set[str], lines: list[str]) -> EpochReport:
        made = EpochReport(meta, plan, known, 3, seed=5, log=lines.append)  # three names shown
        made.set_model(model)
        return made

    drawn = [s.name for s in report(set(), []).sample(NOVELTY_SAMPLES)]  # what each report draws
    for known in (set(), set(drawn[::2]), set(drawn)):
        lines: list[str] = []
        logs = {"nll": 3.3, "bpc": 4.76}
        made = report(known, lines)
        made.on_epoch_begin(0)
        made.on_epoch_end(0, logs)
        expected = sum(name not in known for name in drawn) / NOVELTY_SAMPLES
        assert logs["new_share"] == expected and lines[0].endswith(f"  new {expected:.0%}")
        assert lines[1].startswith("  samples: ") and len(lines[1].split(", ")) == 3  # all counted, 3 shown
    assert expected == 0.0
