"""Batches (charlstm.batches): the seeded batch plan, its stream and datasets, tag balance."""

from __future__ import annotations

import numpy as np

from charlstm.alphabet import Alphabet
from charlstm.batches import BatchPlan, tag_repeats
from tests.conftest import NAMES


def test_batch_plan_is_reproducible_and_covers_every_name_once_per_epoch() -> None:
    plan = BatchPlan(NAMES, Alphabet(), batch_size=4, seed=7)
    epoch0 = plan.batches(0)
    assert len(epoch0) == plan.n_batches
    assert sorted(np.concatenate(epoch0).tolist()) == list(range(len(NAMES)))
    assert all(np.array_equal(a, b) for a, b in zip(epoch0, plan.batches(0), strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(epoch0, plan.batches(1), strict=True))
    x, y = plan.arrays(epoch0[0])
    assert x.shape == y.shape and np.array_equal(x[:, 1:], y[:, :-1])  # one length, no padding
    assert plan.symbols == sum(len(n) + 1 for n in NAMES)


def test_stream_from_a_step_continues_the_uninterrupted_stream() -> None:
    plan = BatchPlan(NAMES, Alphabet(), batch_size=8, seed=1)
    whole = plan.stream(0)
    expected = [next(whole) for _ in range(3 * plan.n_batches)]
    resumed = plan.stream(plan.n_batches + 2)
    for x, y in expected[plan.n_batches + 2 :]:
        rx, ry = next(resumed)
        assert np.array_equal(x, rx) and np.array_equal(y, ry)


def test_datasets_do_not_autotune() -> None:
    # tf.data's autotuning thread made deleting fit's iterator wait up to tens of seconds
    plan = BatchPlan(NAMES, Alphabet(), batch_size=8, seed=1)
    for dataset in (plan.dataset(0), plan.dataset(None)):
        assert dataset.options().autotune.enabled is False


def test_balanced_batches_repeat_rarer_tags_by_the_square_root_of_their_rarity() -> None:
    from charlstm.alphabet import Alphabet
    from charlstm.batches import BatchPlan

    tags = [0] * 100 + [1] * 4 + [2] * 1
    assert tag_repeats(np.array(tags)).tolist() == [1, 5, 10]
    names = ["ab"] * 100 + ["cd"] * 4 + ["e"]
    plan = BatchPlan(names, Alphabet(), 8, seed=0, tags=tags, balance=True)
    seen = np.concatenate(plan.batches(0))
    assert np.bincount(np.array(tags)[seen]).tolist() == [100, 20, 10]
    plain = BatchPlan(names, Alphabet(), 8, seed=0, tags=tags)
    assert sorted(np.concatenate(plain.batches(0)).tolist()) == list(range(len(names)))
