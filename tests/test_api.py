"""The Python API (charlstm.api): each method gives what its command prints, and fails the same way."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import charlstm
from charlstm.cli import cli
from tests.conftest import NAMES


def _json_lines(*args: str) -> list[dict]:
    result = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_load_opens_the_bundled_model_by_default_and_by_name() -> None:
    default, named = charlstm.load(), charlstm.load("bundled")
    assert default.path == named.path and default.tags == ["female", "male", "surname"]
    assert repr(default) == f"charlstm.Model({str(default.path)!r})"
    assert json.loads(json.dumps(default.info())) == _json_lines("info")[0]


def test_generate_and_sample_are_the_generate_command(random_model_dir: Path) -> None:
    model = charlstm.load(random_model_dir)
    printed = _json_lines("generate", "--model", str(random_model_dir), "--n", "6", "--seed", "3",
                          "--min-length", "3")  # fmt: skip
    assert model.generate(6, seed=3, min_length=3) == [p["name"] for p in printed]
    samples = model.sample(6, seed=3, min_length=3)
    assert [s.log_prob for s in samples] == pytest.approx([p["log_prob"] for p in printed], abs=1e-4)
    assert model.generate(6, seed=3, min_length=3) != model.generate(6, seed=4, min_length=3)


def test_a_tag_picks_the_style_as_the_command_does() -> None:
    model = charlstm.load()
    printed = _json_lines("generate", "--n", "4", "--seed", "1", "--tag", "male", "--prefix", "jo")
    names = model.generate(4, seed=1, tag="male", prefix="jo")
    assert names == [p["name"] for p in printed] and all(n.startswith("Jo") for n in names)
    assert {s.tag for s in model.sample(4, seed=1, tags=["male"])} == {"male"}


def test_score_classify_and_evaluate_are_the_commands(names_file: Path) -> None:
    model = charlstm.load()
    scores = model.score(["Anna", "Xqzz"], tag="female")
    printed = _json_lines("score", "Anna", "Xqzz", "--tag", "female")
    assert [s.log_prob for s in scores] == pytest.approx([p["log_prob"] for p in printed], rel=1e-6)
    assert scores[0].log_prob > scores[1].log_prob
    classified = model.classify(["Angelina", "John"])[1].probabilities
    assert classified == pytest.approx(_json_lines("classify", "Angelina", "John")[1]["probabilities"])
    assert max(classified, key=classified.get) == "male" and sum(classified.values()) == pytest.approx(1)
    printed = _json_lines("evaluate", str(names_file))[0]
    assert model.evaluate(names_file).nll_per_char == pytest.approx(printed["nll_per_char"])


def test_blend_is_the_blend_command() -> None:
    blends = charlstm.blend("Brad", "Angelina", top=3)
    printed = _json_lines("blend", "Brad", "Angelina", "--top", "3")[0]["blends"]
    assert [b.blend for b in blends] == [p["blend"] for p in printed]
    assert [b.score for b in blends] == pytest.approx([p["score"] for p in printed], abs=1e-6)
    assert charlstm.blend("Brad", "Angelina", top=3) == blends  # still the function once blending is imported


def test_no_submodule_shadows_a_public_name() -> None:
    """Importing a submodule binds it on the package, so one named like a public function would
    replace that function after its first use (``charlstm.blend`` did, while blending was blend.py)."""
    submodules = {module.name for module in pkgutil.iter_modules(charlstm.__path__)}
    assert not submodules & set(charlstm.__all__)


@pytest.mark.parametrize(
    ("call", "option", "message"),
    [
        (lambda m: m.generate(3, tag="elves"), "tag", "unknown tag 'elves'"),
        (lambda m: m.generate(3, temperature=-1), "temperature", "greater than 0"),
        (lambda m: m.generate(0), "count", "n must be at least 1"),
        (lambda m: m.generate(3, top_k=0), "top_k", "top_k must be at least 1"),
        (lambda m: m.generate(3, min_length=0), "min_length", "min_length must be at least 1"),
        (lambda m: m.score(["Anna"], tag="elves"), "tag", "unknown tag 'elves'"),
        (lambda m: m.explain("Anna", top=0), "top", "at least 1"),
        (lambda m: charlstm.blend("Brad", "Angelina", top=0), "top", "at least 1"),
    ],
)
def test_an_unusable_option_is_an_option_error_naming_it(call, option: str, message: str) -> None:
    with pytest.raises(charlstm.OptionError, match=message) as caught:
        call(charlstm.load())
    assert caught.value.option == option and isinstance(caught.value, charlstm.CharlstmError)


def test_a_missing_model_is_a_charlstm_error(tmp_path: Path) -> None:
    with pytest.raises(charlstm.CharlstmError, match="no such model directory"):
        charlstm.load(tmp_path / "nowhere")


def test_train_returns_the_model_and_rejects_a_bad_option(tmp_path: Path) -> None:
    data = tmp_path / "names.txt"
    data.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    said: list[str] = []
    model = charlstm.train(data, tmp_path / "m", epochs=1, hidden=8, layers=1, val_fraction=0, seed=1,
                           samples_per_epoch=0, log=said.append)  # fmt: skip
    assert model.path == tmp_path / "m" and model.info()["epochs"] == 1
    assert any(line.startswith("epoch 1:") for line in said)
    with pytest.raises(charlstm.OptionError) as caught:
        charlstm.train(data, tmp_path / "m2", epochs=1, hidden=0, log=said.append)
    assert caught.value.option == "hidden"


def test_inference_through_the_api_never_imports_tensorflow() -> None:
    script = (
        "import sys, charlstm\n"
        "m = charlstm.load()\n"
        "m.generate(3, seed=1); m.score(['Anna']); m.classify(['Anna']); charlstm.blend('Brad', 'Angelina')\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
