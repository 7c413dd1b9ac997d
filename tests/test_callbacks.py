"""Training's callbacks (charlstm.callbacks) on their own, without a training."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from charlstm.callbacks import StopControl


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
