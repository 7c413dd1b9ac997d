"""Fine-tuning (train --init-from, issue 14): tiny bases, tiny files, the CLI end to end."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from charlstm import checkpoint as ckpt
from charlstm.cli import cli
from charlstm.evaluation import score_names, tag_log_probs
from charlstm.finetune import base_nll, initial_weights, open_base, shrink
from charlstm.npmodel import NumpyLSTM
from charlstm.options import FINETUNE_DEFAULTS, TRAIN, Architecture
from charlstm.preflight import preflight
from tests.conftest import NAMES

TINY = ["--batch-size", "16", "--dropout", "0", "--val-fraction", "0.2", "--soup", "1"]
ELVES = ["elrond", "galadriel", "legolas", "arwen", "thranduil", "celeborn", "elrohir", "elladan",
         "glorfindel", "haldir", "lindir", "erestor", "gildor", "celebrian", "finrod", "fingon",
         "turgon", "idril", "earendil", "elwing", "luthien", "thingol", "beleg", "orophin",
         "rumil", "amroth", "nimrodel", "celebrimbor", "gilgalad", "feanor"]  # fmt: skip


def _run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _arrays(model_dir: Path) -> dict[str, np.ndarray]:
    with np.load(model_dir / ckpt.WEIGHTS_FILE) as npz:
        return {key: npz[key] for key in npz.files}


@pytest.fixture(scope="module")
def tagged_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny tagged model (tags a, b: the first and second half of NAMES), one epoch."""
    root = tmp_path_factory.mktemp("base")
    lines = [f"{n}\t{'a' if i < len(NAMES) // 2 else 'b'}" for i, n in enumerate(NAMES)]
    (root / "tagged.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["train", str(root / "tagged.txt"), "--model", str(root / "base"), "--epochs", "1"]
    result = _run(*args, "--hidden", "8", "--layers", "1", "--tag-dim", "4", *TINY)
    assert result.exit_code == 0, result.output
    return root / "base"


@pytest.fixture
def elves_file(tmp_path: Path) -> Path:
    path = tmp_path / "elves.txt"
    path.write_text("\n".join(ELVES) + "\n", encoding="utf-8")
    return path


def test_fine_tuning_starts_from_the_base_keeps_its_tags_and_adds_one(
    tagged_base: Path, elves_file: Path
) -> None:
    result = _run("train", str(elves_file), "--model", "ft", "--init-from", str(tagged_base),
                  "--epochs", "1", "--learning-rate", "1e-12", "--init-shrink", "1", *TINY)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "untagged names fine-tune a tagged model under tag(s) of their own: elves" in result.stderr
    assert "held out for validation" in result.stderr
    sampled_tags = re.findall(r"\[(\w+)\] \((?:new|seen)\)", result.stderr)
    assert sampled_tags and set(sampled_tags) == {"elves"}  # epoch samples: the file's tag, not the base's
    meta = json.loads(Path("ft/model.json").read_text())
    assert meta["tags"] == ["a", "b", "elves"] and meta["tag_counts"]["elves"] > 0
    # the base's figure on the held-out names is what Keras measures there for the unchanged start
    assert meta["training"]["base_val_nll"] == pytest.approx(meta["training"]["best_val_nll"], abs=1e-4)
    assert f"the base model unchanged: validation NLL {meta['training']['base_val_nll']:.4f}" in result.stderr
    assert meta["base"]["path"] == str(tagged_base)
    assert meta["base"]["weights_sha256"] == ckpt.file_sha256(tagged_base / ckpt.WEIGHTS_FILE)
    base, tuned = _arrays(tagged_base), _arrays(Path("ft"))
    for key, value in base.items():  # a learning rate of 1e-12 leaves the start unchanged
        np.testing.assert_allclose(tuned[key][: len(value)], value, atol=1e-6, err_msg=key)
    assert any(np.allclose(tuned["tag_embedding"][2], row, atol=1e-6) for row in base["tag_embedding"])
    for tag in ("a", "elves"):
        sampled = _run("generate", "--model", "ft", "--tag", tag, "--n", "3", "--seed", "1")
        assert sampled.exit_code == 0 and len(sampled.stdout.split()) == 3
    assert set(Path("ft", ckpt.NAMES_FILE).read_text().split()) < set(ELVES)  # --novel: the new file's names
    novel = _run("generate", "--model", "ft", "--novel", "--n", "5", "--seed", "2")
    assert novel.exit_code == 0 and not set(novel.stdout.split()) & set(ELVES)


@pytest.mark.parametrize("names", [NAMES[len(NAMES) // 2 :], NAMES[::3], ELVES])
def test_new_tag_starts_where_the_base_finds_its_names_likeliest(tagged_base: Path, names: list[str]) -> None:
    base = open_base(str(tagged_base))
    said: list[str] = []
    arrays = initial_weights(base, base.meta.architecture, ["a", "b", "new"], {"new": names}, 0, said.append)
    lm, alphabet, rows = NumpyLSTM.from_arrays(base.arrays), base.meta.alphabet, base.arrays["tag_embedding"]
    per_name = tag_log_probs(lm, alphabet, names)
    posterior = np.exp(per_name) / np.exp(per_name).sum(axis=1, keepdims=True)
    candidates = [*rows, posterior.mean(axis=0) @ rows]  # each base tag's row, and their posterior mean
    totals = [
        tag_log_probs(NumpyLSTM.from_arrays({**base.arrays, "tag_embedding": np.vstack([rows, row])}),
                      alphabet, names)[:, -1].sum()
        for row in candidates
    ]  # fmt: skip
    best = int(np.argmax(totals))
    np.testing.assert_allclose(arrays["tag_embedding"][2], candidates[best], rtol=1e-5)
    assert ("averaged by its names' posterior" in said[0]) == (best == len(rows))


def test_a_file_mixing_the_base_styles_starts_between_them() -> None:
    base = open_base("bundled")  # female, male, surname
    names = ["mary", "john", "anna", "james", "linda", "robert", "karin", "erik", "ingrid", "lars"]
    said: list[str] = []
    tags = [*base.meta.tags, "x"]
    arrays = initial_weights(base, base.meta.architecture, tags, {"x": names}, 0, said.append)
    assert "averaged by its names' posterior (female" in said[0]
    rows, alphabet = base.arrays["tag_embedding"], base.meta.alphabet
    mixed = base_nll(arrays, alphabet, names, [3] * len(names))
    for row in rows:  # the mean beats every single base tag's embedding on these names
        single = {**arrays, "tag_embedding": np.vstack([rows, row])}
        assert mixed < base_nll(single, alphabet, names, [3] * len(names))


def test_shrink_scales_the_start_but_not_the_tag_embedding(tagged_base: Path) -> None:
    base = open_base(str(tagged_base))
    arrays = shrink(initial_weights(base, base.meta.architecture, ["a", "b"], {}, 0, print), 0.5)
    for key, value in base.arrays.items():
        np.testing.assert_allclose(arrays[key], value if key == "tag_embedding" else value * 0.5)


def test_base_nll_reads_a_new_tag_as_its_nearest_base_tag(tagged_base: Path) -> None:
    base = open_base(str(tagged_base))
    names = NAMES[len(NAMES) // 2 :]
    arrays = initial_weights(base, base.meta.architecture, ["a", "b", "new"], {"new": names}, 0, print)
    lm, alphabet = NumpyLSTM.from_arrays(base.arrays), base.meta.alphabet
    nearest = int(np.argmax(tag_log_probs(lm, alphabet, names).sum(0)))
    scores = score_names(lm, alphabet, names[:7], [nearest] * 7)
    expected = -sum(s.log_prob for s in scores) / sum(s.symbols for s in scores)
    assert base_nll(arrays, alphabet, names[:7], [2] * 7) == pytest.approx(expected, rel=1e-6)
    worse = base_nll(shrink(arrays, 0.5), alphabet, names[:7], [2] * 7)
    assert worse != pytest.approx(expected, rel=1e-3)  # a shrunk start is not the base


def test_an_untagged_base_given_tags_starts_with_its_own_probabilities(tmp_path: Path) -> None:
    from tests.conftest import write_random_model

    base = open_base(str(write_random_model(tmp_path / "untagged")))
    for tag_input in ("step", "state", "both"):
        arch = Architecture(hidden=16, layers=1, tag_dim=4, tag_input=tag_input)
        arrays = initial_weights(base, arch, ["x", "y"], {}, 0, print)
        tagged, plain = NumpyLSTM.from_arrays(arrays), NumpyLSTM.from_arrays(base.arrays)
        expected = [s.log_prob for s in score_names(plain, base.meta.alphabet, NAMES[:5])]
        for tag in (0, 1):
            got = [s.log_prob for s in score_names(tagged, base.meta.alphabet, NAMES[:5], [tag] * 5)]
            np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_fine_tuning_learns_resumes_and_info_shows_the_base(tagged_base: Path, tmp_path: Path) -> None:
    tagged = tmp_path / "more.txt"
    tagged.write_text(
        "".join(f"{n}\t{'b' if i % 2 else 'c'}\n" for i, n in enumerate(ELVES)), encoding="utf-8"
    )
    args = ["train", str(tagged), "--model", "ft", "--init-from", str(tagged_base), "--learning-rate", "0.02"]
    assert _run(*args, "--epochs", "2", *TINY).exit_code == 0
    result = _run("train", str(tagged), "--model", "ft", "--resume", "--epochs", "4")
    assert result.exit_code == 0, result.output
    assert "fine-tuning" not in result.stderr and "new tag" not in result.stderr  # no re-init on resume
    history = [
        json.loads(json.dumps(h)) for h in json.loads(Path("ft/state/state.json").read_text())["history"]
    ]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4] and history[-1]["nll"] < history[0]["nll"]
    meta = json.loads(Path("ft/model.json").read_text())
    assert meta["tags"] == ["a", "b", "c"] and meta["training"]["options"]["init_from"] == str(tagged_base)
    assert meta["training"]["options"]["init_shrink"] == FINETUNE_DEFAULTS["init_shrink"]  # the default
    assert meta["training"]["options"]["learning_rate"] == 0.02  # given: it wins over fine-tuning's
    info = _run("info", "--model", "ft", "--json")
    assert json.loads(info.stdout)["base_model"]["path"] == str(tagged_base)
    base_val_nll = meta["training"]["base_val_nll"]  # measured once, kept by the resumed run
    assert json.loads(info.stdout)["base_val_nll"] == base_val_nll
    assert f"(the base model unchanged: {base_val_nll:.4f})" in result.stderr
    assert "base_model: path=" in _run("info", "--model", "ft").stdout


def test_a_fine_tuning_worse_than_its_base_trains_again_unshrunk_and_keeps_the_better(
    tagged_base: Path, elves_file: Path
) -> None:
    # a learning rate of 1e-12 keeps each start as it is: the half-shrunk one is far worse than the base
    result = _run("train", str(elves_file), "--model", "ft", "--init-from", str(tagged_base),
                  "--epochs", "1", "--learning-rate", "1e-12", *TINY)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "fine-tuning once more, from the base's weights unshrunk (--init-shrink 1)" in result.stderr
    assert "kept the second" in result.stderr
    meta = json.loads(Path("ft/model.json").read_text())
    assert meta["training"]["options"]["init_shrink"] == 1.0
    assert meta["training"]["best_val_nll"] == pytest.approx(meta["training"]["base_val_nll"], abs=1e-4)
    base, tuned = _arrays(tagged_base), _arrays(Path("ft"))
    for key, value in base.items():  # the second start's weights replaced the first's
        np.testing.assert_allclose(tuned[key][: len(value)], value, atol=1e-6, err_msg=key)
    assert not Path("ft", ckpt.RETRY_DIR).exists()
    state = json.loads(Path("ft/state/state.json").read_text())
    assert Path("ft/state", state["model"]).is_file() and len(list(Path("ft/state").iterdir())) == 2
    assert _run("train", str(elves_file), "--model", "ft", "--resume", "--epochs", "2").exit_code == 0


def test_an_explicit_shrink_trains_once_and_says_the_base_is_better(
    tagged_base: Path, elves_file: Path
) -> None:
    result = _run("train", str(elves_file), "--model", "ft", "--init-from", str(tagged_base),
                  "--epochs", "1", "--learning-rate", "1e-12", "--init-shrink", "0.5", *TINY)  # fmt: skip
    assert result.exit_code == 0, result.output
    training = json.loads(Path("ft/model.json").read_text())["training"]
    assert training["best_val_nll"] > training["base_val_nll"] and training["options"]["init_shrink"] == 0.5
    assert "once more" not in result.stderr
    assert "the base model unchanged predicts the held-out names better" in result.stderr
    assert "try --init-shrink 1, or use the base model itself" in result.stderr


@pytest.mark.parametrize(
    ("second", "time_limit", "says"),
    [({"best_val_nll": 2.5, "signal": None}, None, "kept the first: validation NLL 2.4000 against 2.5000"),
     ({"best_val_nll": 2.1, "signal": 2}, None, "the first fine-tuning stays in"),
     (None, 150.0, "try --init-shrink 1, or use the base model itself")],
)  # fmt: skip
def test_the_second_start_keeps_the_first_when_worse_interrupted_or_out_of_time(
    tagged_base: Path, elves_file: Path, monkeypatch: pytest.MonkeyPatch, second, time_limit, says
) -> None:
    from charlstm import training
    from charlstm.options import TrainOptions

    first = {"best_val_nll": 2.4, "base_val_nll": 2.0, "signal": None}
    opts = TrainOptions(init_from=str(tagged_base), val_fraction=0.2, time_limit=time_limit)
    logged: list[str] = []
    with preflight([elves_file], "ft", opts, log=logged.append) as run:
        assert run.retry is not None and run.retry.opts.init_shrink == 1.0 and run.opts.init_shrink == 0.5

        def fake_train(retry, strategy, started):  # the second training, as _train records it
            (retry.model_dir / ckpt.META_FILE).write_text("{}")
            return {"base_val_nll": 2.0, **second}

        monkeypatch.setattr(training, "_train", fake_train)
        record, kept = training._against_base(run, None, first, time.monotonic() - 100)
    assert says in "\n".join(logged)
    assert record["best_val_nll"] == 2.4 and record["signal"] == (second or {}).get("signal")
    assert kept is run  # the first start: a soup would start there too
    interrupted = bool(second and second["signal"])
    assert Path("ft", ckpt.RETRY_DIR, ckpt.META_FILE).exists() == interrupted  # resumable there


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [("--hidden", "16", "--hidden 8"), ("--layers", "2", "--layers 1"), ("--tag-dim", "8", "--tag-dim 4"),
     ("--alphabet", "auto", "--alphabet default")],
)  # fmt: skip
def test_options_contradicting_the_base_are_usage_errors(
    tagged_base: Path, elves_file: Path, option: str, value: str, says: str
) -> None:
    result = _run("train", str(elves_file), "--model", "ft", "--init-from", str(tagged_base), option, value)
    assert result.exit_code == 2 and says in result.stderr and "keeps" in result.stderr
    assert not Path("ft", ckpt.META_FILE).exists()


def test_names_outside_the_base_alphabet_and_a_missing_base_are_refused(
    tagged_base: Path, tmp_path: Path
) -> None:
    cyrillic = tmp_path / "cyr.txt"
    cyrillic.write_text("анна\nиван\nмария\n", encoding="utf-8")
    result = _run("train", str(cyrillic), "--model", "ft", "--init-from", str(tagged_base))
    assert result.exit_code == 1 and "no usable names" in result.stderr and "base's alphabet" in result.stderr
    missing = _run("train", str(cyrillic), "--model", "ft", "--init-from", "nowhere")
    assert missing.exit_code == 2 and "no such model directory" in missing.stderr


def test_too_few_held_out_names_are_refused_before_tensorflow(elves_file: Path) -> None:
    from charlstm.errors import CharlstmError
    from charlstm.options import TrainOptions

    with pytest.raises(CharlstmError, match=r"only 3 of 30 names.*--val-fraction 0"):
        with preflight([elves_file], "m", TrainOptions(val_fraction=0.1), log=lambda m: None):
            pass
    logged: list[str] = []
    with preflight([elves_file], "m", TrainOptions(val_fraction=0.0), log=logged.append) as run:
        assert run.val_names == [] and len(run.train_names) == 30
    assert any("small file: 30 names, 0 held out" in m for m in logged)


def test_fine_tuning_the_bundled_model(elves_file: Path) -> None:
    args = ["--init-from", "bundled", "--epochs", "1", "--batch-size", "16", "--val-fraction", "0.2"]
    result = _run("train", str(elves_file), "--model", "ft", *args)
    assert result.exit_code == 0, result.output
    meta = json.loads(Path("ft/model.json").read_text())
    bundled = ckpt.bundled_model_dir()
    assert meta["base"]["path"] == "bundled"
    assert meta["base"]["weights_sha256"] == ckpt.file_sha256(bundled / ckpt.WEIGHTS_FILE)
    assert meta["architecture"]["hidden"] == ckpt.read_meta(bundled).architecture.hidden
    for dropout in ("dropout", "input_dropout"):  # not given: fine-tuning's, not the base's
        assert meta["architecture"][dropout] == FINETUNE_DEFAULTS[dropout]
    learning_rate = meta["training"]["options"]["learning_rate"]
    assert learning_rate == FINETUNE_DEFAULTS["learning_rate"] != TRAIN.learning_rate
    base_tags = ckpt.read_meta(bundled).tags
    assert meta["tags"] == [*base_tags, "elves"] if base_tags else not meta.get("tags")
    for tag in [*base_tags[:1], "elves"] if base_tags else []:
        assert len(_run("generate", "--model", "ft", "--tag", tag, "--n", "5").stdout.split()) == 5
    assert _run("generate", "--model", "ft", "--n", "5").exit_code == 0
    # fine-tuning's default soup: three more fine-tunings, then their average is kept or not
    n = FINETUNE_DEFAULTS["soup"]
    assert f"model soup: fine-tuning {n} of {n}" in result.stderr
    kept = meta["training"].get("soup") == n
    assert ("kept the average" in result.stderr) == kept != ("kept the first" in result.stderr)
    assert not Path("ft", ckpt.SOUP_DIR).exists()


def test_a_soup_of_identical_fine_tunings_keeps_the_first(tagged_base: Path, elves_file: Path) -> None:
    """At a learning rate of 1e-12 every fine-tuning stays at the start: their average is no better."""
    args = ["--init-from", str(tagged_base), "--epochs", "1", "--learning-rate", "1e-12",
            "--init-shrink", "1", *TINY[:-2], "--soup", "2"]  # fmt: skip
    result = _run("train", str(elves_file), "--model", "ft", *args)
    assert result.exit_code == 0, result.output
    assert "model soup: fine-tuning 2 of 2 (--seed 1)" in result.stderr
    assert "model soup: the average of 2 fine-tunings validates at" in result.stderr
    assert "kept the first" in result.stderr
    assert json.loads(Path("ft/model.json").read_text())["training"]["soup"] is None
    assert not Path("ft", ckpt.SOUP_DIR).exists()


@pytest.mark.parametrize(
    ("time_limit", "signal", "seeds"),
    [(None, None, [6, 7, 8]), (None, 2, [6]), (1e-3, None, []), (2.9, None, [6, 7])],
)
def test_a_soup_averages_the_fine_tunings_and_keeps_the_average_when_better(
    tagged_base: Path, elves_file: Path, monkeypatch: pytest.MonkeyPatch, time_limit, signal, seeds
) -> None:
    """The other fine-tunings (faked here: the first's weights plus k/100, each taking its
    share of the time on a fake clock) train in DIR/soup, one by one, as many as fit with
    the first's 1 s."""
    from charlstm import training
    from charlstm.options import TrainOptions

    assert _run("train", str(elves_file), "--model", "ft", "--init-from", str(tagged_base),
                "--epochs", "1", *TINY).exit_code == 0  # fmt: skip
    first = _arrays(Path("ft"))
    trained: list[int] = []
    clock = [0.0]  # seconds: only the fake fine-tunings advance it, so machine load cannot change the count

    def fake_train(ingredient, strategy, started):
        trained.append(ingredient.opts.seed)
        k = ingredient.opts.seed - 5
        assert ingredient.model_dir == Path("ft", ckpt.SOUP_DIR) and ingredient.init_weights is not None
        clock[0] += ingredient.opts.time_limit or 0  # 2.9 s: two fit, 1.45 s each
        arrays = {name: value + k / 100 for name, value in first.items()}
        ckpt.write_arrays(ingredient.model_dir / ckpt.WEIGHTS_FILE, arrays)
        return {"best_val_nll": 3.0 + k, "signal": signal if k == 1 else None}

    opts = TrainOptions(init_from=str(tagged_base), val_fraction=0.2, soup=4, seed=5, time_limit=time_limit)
    logged: list[str] = []
    with preflight([elves_file], "ft", opts, overwrite=True, log=logged.append) as run:
        monkeypatch.setattr(training, "_train", fake_train)
        monkeypatch.setattr(training, "time", SimpleNamespace(monotonic=lambda: clock[0]))
        record = {"best_val_nll": 99.0, "signal": None}
        record = training._soup(run, None, record, run, clock[0], took=1.0)
    said = "\n".join(logged)
    assert trained == seeds and not Path("ft", ckpt.SOUP_DIR).exists()
    if time_limit:
        assert f"model soup: no time left for more fine-tunings after {len(seeds) + 1} of 4" in said
    meta = json.loads(Path("ft/model.json").read_text())
    if signal or not seeds:  # interrupted or out of time: the first stands
        assert record["best_val_nll"] == 99.0 and record["signal"] == signal
        assert meta["training"]["soup"] is None
        assert not signal or "the first fine-tuning stays in" in said
        np.testing.assert_array_equal(_arrays(Path("ft"))["out_kernel"], first["out_kernel"])
        return
    n = len(seeds) + 1
    for key, value in _arrays(Path("ft")).items():  # the mean of +0, +0.01, +0.02, ...
        np.testing.assert_allclose(value, first[key] + (n - 1) / 200, atol=1e-6, err_msg=key)
    nll = record["best_val_nll"]
    assert record["soup"] == meta["training"]["soup"] == n and meta["training"]["best_val_nll"] == nll
    assert f"model soup: kept the average of {n} fine-tunings: val_nll {nll:.4f} nats" in said
    assert "each alone: " + ", ".join(f"{x:.4f}" for x in [99.0, 4.0, 5.0, 6.0][:n]) in said
    assert json.loads(Path("ft/state/state.json").read_text())["best"] == nll  # a resume keeps it
    assert f"soup: {n}" in _run("info", "--model", "ft").stdout


def test_soup_without_init_from_is_a_usage_error(elves_file: Path) -> None:
    result = _run("train", str(elves_file), "--model", "m", "--soup", "2")
    assert result.exit_code == 2 and "--soup" in result.stderr and "needs --init-from" in result.stderr
