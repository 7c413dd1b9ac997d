"""Fit the blend reranker's weights and measure it (``make fit-blend DATA=../shared/data``).

The reranker is a conditional logit: a softmax over each pair's candidates of a
linear score of their features, fitted by Newton's method with an L2 penalty. It is
fitted on DATA/blends-train.tsv; the L2 strength, the feature set and how much a dev
row weighs against a train row are chosen by 10-fold cross-validation on
DATA/blends-dev.tsv (fit on train plus nine folds, test on the tenth). The chosen
setting is then fitted on train plus all of dev and written to
charlstm/blend_weights.json. Rows whose blend is not a prefix+suffix candidate take
no part in fitting but count as misses in every figure.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

from charlstm import checkpoint as ckpt
from charlstm.blend_features import CUTS, FEATURES, LM_PARTS, STRUCTURE
from charlstm.blending import WEIGHTS_FILE, Blender, Weights, evaluate_ranked, read_pairs

# The names-LM features are left out of every set: `blend --model` may name any
# names model, often one just trained, and weights fitted to the bundled one would
# misread its scores. With them ("all" features, l2 3e-5) CV gave the same exact@1,
# 59.6%, and avg Levenshtein 0.900 against 0.908, while `--pairs` ran at half speed.
FEATURE_SETS = {
    "structure+words": STRUCTURE + tuple(f"words_{p}" for p in LM_PARTS),
    "structure+cuts+words": STRUCTURE + CUTS + tuple(f"words_{p}" for p in LM_PARTS),
}
L2 = (3e-5, 1e-4, 1e-3)
DEV_WEIGHT = (3.0,)  # 1.0 (no extra weight on dev rows) scored lower in every setting tried


class Data:
    """Feature matrix of all candidates of some pairs, grouped by pair."""

    def __init__(self, blender: Blender, rows: list[tuple[str, ...]]) -> None:
        pairs = [(w1, w2) for w1, w2, _ in rows]
        self.gold = [g for _, _, g in rows]
        self.cands: list[list[str]] = []
        mats = []
        for start in range(0, len(pairs), 256):
            cands, mat = blender.features(pairs[start : start + 256])
            self.cands += [[c.blend for c in cs] for cs in cands]
            mats.append(mat)
        self.x = np.vstack(mats)
        sizes = np.array([len(c) for c in self.cands])
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.target = np.array(
            [cs.index(g) if g in cs else -1 for cs, g in zip(self.cands, self.gold, strict=True)]
        )

    def __len__(self) -> int:
        return len(self.gold)


def _segments(x: np.ndarray, offsets: np.ndarray, groups: np.ndarray):
    """Rows of ``x`` for the chosen groups, their group ids and new offsets."""
    index = np.concatenate([np.arange(offsets[g], offsets[g + 1]) for g in groups])
    sizes = offsets[groups + 1] - offsets[groups]
    gid = np.repeat(np.arange(len(groups)), sizes)
    return x[index], gid, np.concatenate([[0], np.cumsum(sizes)])[:-1]


def fit_logit(
    x: np.ndarray,
    gid: np.ndarray,
    starts: np.ndarray,
    gold: np.ndarray,
    sample_weight: np.ndarray,
    l2: float,
    iterations: int = 50,
) -> np.ndarray:
    """Weights maximising the weighted mean conditional log-likelihood minus l2/2 |w|^2.

    ``x`` holds every candidate row, ``gid`` its group, ``starts`` each group's first
    row and ``gold`` the row of each group's right answer.
    """  # fmt: skip
    s = sample_weight / sample_weight.sum()
    w = np.zeros(x.shape[1])

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w
        z_max = np.maximum.reduceat(z, starts)
        p = np.exp(z - z_max[gid])
        norm = np.add.reduceat(p, starts)
        lse = np.log(norm) + z_max
        p /= norm[gid]
        loss = -(s * (z[gold] - lse)).sum() + 0.5 * l2 * w @ w
        return loss, p

    loss, p = objective(w)
    for _ in range(iterations):
        mu = np.add.reduceat(p[:, None] * x, starts)
        grad = -(s[:, None] * (x[gold] - mu)).sum(0) + l2 * w
        hess = (x * (s[gid] * p)[:, None]).T @ x - (mu * s[:, None]).T @ mu + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while True:
            new_loss, new_p = objective(w - t * step)
            if new_loss <= loss or t < 1e-6:
                break
            t *= 0.5
        w, done = w - t * step, loss - new_loss < 1e-10
        loss, p = new_loss, new_p
        if done:
            break
    return w


def fit(data: Data, groups: np.ndarray, weights: np.ndarray, mask: np.ndarray, l2: float) -> Weights:
    """Standardise the features of ``groups`` and fit; returns a raw-feature :class:`Weights`."""
    keep = data.target[groups] >= 0
    groups, weights = groups[keep], weights[keep]
    x, gid, starts = _segments(data.x, data.offsets, groups)
    mean, scale = x.mean(0), x.std(0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale * mask
    w = fit_logit(z, gid, starts, starts + data.target[groups], weights, l2)
    return Weights(FEATURES, w * mask, mean, scale)


def ranked(data: Data, groups: np.ndarray, weights: Weights, top: int = 10) -> list[list[str]]:
    """The ``top`` candidates of each group, best first."""
    scores = weights.score(data.x)
    out = []
    for g in groups:
        s = scores[data.offsets[g] : data.offsets[g + 1]]
        out.append([data.cands[g][i] for i in np.argsort(-s, kind="stable")[:top]])
    return out


def metrics(answers: list[list[str]], gold: list[str]) -> dict[str, float]:
    """Exact@k and average Levenshtein, as ``blend --eval --json`` reports them (without ``rows``)."""
    figures = evaluate_ranked(answers, gold).to_json()
    del figures["rows"]
    return figures


def cross_validate(train: Data, dev: Data, both: Data, mask, l2, dev_weight, folds, seed) -> dict:
    """10-fold CV on dev; each fold fits on all of train plus the other dev folds."""
    n_train = len(train)
    order = np.random.default_rng(seed).permutation(len(dev))
    answers: list[list[str]] = [[] for _ in range(len(dev))]
    for k in range(folds):
        test = order[k::folds]
        fit_dev = np.setdiff1d(order, test)
        groups = np.concatenate([np.arange(n_train), n_train + fit_dev])
        weights = np.concatenate([np.ones(n_train), np.full(len(fit_dev), dev_weight)])
        model = fit(both, groups, weights, mask, l2)
        for i, a in zip(test, ranked(both, n_train + test, model), strict=True):
            answers[i] = a
    return metrics(answers, dev.gold)


def concat(a: Data, b: Data) -> Data:
    both = object.__new__(Data)
    both.gold = a.gold + b.gold
    both.cands = a.cands + b.cands
    both.x = np.vstack([a.x, b.x])
    both.offsets = np.concatenate([a.offsets, a.offsets[-1] + b.offsets[1:]])
    both.target = np.concatenate([a.target, b.target])
    return both


def show(figures: dict[str, float]) -> str:
    return "  ".join(
        f"{k} {v:.4f}" if k == "avg_levenshtein" else f"{k} {100 * v:.1f}%" for k, v in figures.items()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help="folder with blends-train.tsv and blends-dev.tsv")
    parser.add_argument("--names-model", type=Path, default=ckpt.bundled_model_dir("names"))
    parser.add_argument("--words-model", type=Path, default=ckpt.bundled_model_dir("words"))
    parser.add_argument("--out", type=Path, default=WEIGHTS_FILE)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    names, words = ckpt.open_model(args.names_model), ckpt.open_model(args.words_model)
    zero = Weights(FEATURES, np.zeros(len(FEATURES)), np.zeros(len(FEATURES)), np.ones(len(FEATURES)))
    blender = Blender(names.lm(), words.lm(), names.alphabet, zero)
    started = time.perf_counter()
    train, dev = (
        Data(blender, read_pairs(open(args.data / f, encoding="utf-8"), f, names.alphabet, columns=3))
        for f in ("blends-train.tsv", "blends-dev.tsv")
    )
    both = concat(train, dev)
    seconds = time.perf_counter() - started
    print(f"features of {len(both):,} pairs ({len(both.x):,} candidates) in {seconds:.1f} s", file=sys.stderr)
    for name, data in (("train", train), ("dev", dev)):
        print(f"{name}: {len(data)} rows, gold among candidates in {np.mean(data.target >= 0):.1%}")

    results = []
    for fs, l2, dw in itertools.product(FEATURE_SETS, L2, DEV_WEIGHT):
        mask = np.array([f in FEATURE_SETS[fs] for f in FEATURES], float)
        figures = cross_validate(train, dev, both, mask, l2, dw, args.folds, args.seed)
        results.append((figures["exact@1"], -figures["avg_levenshtein"], fs, l2, dw, figures))
        print(f"CV features={fs} l2={l2:g} dev_weight={dw:g}: {show(figures)}", flush=True)
    *_, fs, l2, dw, figures = max(results, key=lambda r: r[:2])
    print(f"chosen: features={fs} l2={l2:g} dev_weight={dw:g}")
    print(f"{args.folds}-fold CV on blends-dev.tsv: {show(figures)}")

    mask = np.array([f in FEATURE_SETS[fs] for f in FEATURES], float)
    train_only = fit(train, np.arange(len(train)), np.ones(len(train)), mask, l2)
    held = metrics(ranked(dev, np.arange(len(dev)), train_only), dev.gold)
    print(f"fitted on blends-train.tsv only, tested on all of blends-dev.tsv: {show(held)}")

    groups = np.arange(len(both))
    weights = np.concatenate([np.ones(len(train)), np.full(len(dev), dw)])
    final = fit(both, groups, weights, mask, l2)
    kept = [i for i, f in enumerate(FEATURES) if mask[i]]
    out = {
        "note": "Conditional-logit reranker fitted by benchmarks/fit_blend.py (make fit-blend) on "
        "blends-train.tsv plus blends-dev.tsv, with the bundled names and words LMs; settings "
        "chosen by 10-fold cross-validation on blends-dev.tsv. score = sum(weight * "
        "(feature - mean) / scale).",
        "settings": {"features": fs, "l2": l2, "dev_weight": dw, "folds": args.folds, "seed": args.seed},
        "cross_validation": {k: round(v, 4) for k, v in figures.items()},
        "features": [FEATURES[i] for i in kept],
        "weight": [round(float(final.weight[i]), 6) for i in kept],
        "mean": [round(float(final.mean[i]), 6) for i in kept],
        "scale": [round(float(final.scale[i]), 6) for i in kept],
    }
    ckpt.write_json(args.out, out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
