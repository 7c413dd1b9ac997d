"""The options module: one default per option, shared by the CLI and the library."""

from __future__ import annotations

import inspect
import subprocess
import sys
from dataclasses import fields

import click
import numpy as np
import pytest

from charlstm.api import Model
from charlstm.blending import Blender
from charlstm.cli import cli
from charlstm.explain import explain_name
from charlstm.options import (
    ADDED_FIELDS,
    BLEND,
    EXPLAIN,
    GENERATE,
    Allowed,
    Architecture,
    BlendOptions,
    ExplainOptions,
    GenerateOptions,
    TrainOptions,
    allowed,
    disallowed,
    refusal,
)
from charlstm.sampling import sample_names


def _defaults(command: str) -> dict[str, object]:
    """Each option's default, where it has one (a plain flag has none of its own in Click 8.3)."""
    params = cli.commands[command].params
    return {
        p.name: p.default
        for p in params
        if isinstance(p, click.Option) and (not p.is_flag or isinstance(p.default, bool))
    }


def test_train_options_take_their_defaults_from_the_options_module() -> None:
    cli_defaults = _defaults("train")
    expected = {**TrainOptions().to_json(), **Architecture().to_json()}
    shared = {name for name in set(cli_defaults) & set(expected) if expected[name] is not None}
    assert {"epochs", "hidden", "layers", "dropout", "batch_size", "learning_rate", "seed"} <= shared
    for name in shared:
        assert cli_defaults[name] == expected[name], name
    strategy = next(p for p in cli.commands["train"].params if p.name == "strategy")
    assert strategy.type.choices[0] == TrainOptions().strategy


def test_generate_blend_and_explain_defaults_are_the_library_defaults() -> None:
    cli_defaults = _defaults("generate")
    assert cli_defaults["count"] == GENERATE.count
    signature = inspect.signature(sample_names).parameters
    for name in ("temperature", "min_length", "max_length", "unique"):
        assert cli_defaults[name] == getattr(GENERATE, name) == signature[name].default, name
    assert GENERATE.top_k is signature["top_k"].default is None  # Click's default for --top-k: unset
    assert _defaults("blend")["top"] == BLEND.top == inspect.signature(Blender.rank).parameters["top"].default
    explain_defaults = (inspect.signature(f).parameters["top"].default for f in (explain_name, Model.explain))
    assert _defaults("explain")["top"] == EXPLAIN.top == next(explain_defaults) == next(explain_defaults)


def test_a_resumed_run_inherits_run_options_but_not_per_invocation_ones() -> None:
    inherited = set(TrainOptions.inherited())
    assert {"epochs", "batch_size", "learning_rate", "seed", "patience", "lr_schedule"} <= inherited
    assert not inherited & {"time_limit", "strategy", "alphabet", "architecture", "tensorboard"}


def test_architecture_round_trips_through_json_and_ignores_unknown_keys() -> None:
    arch = Architecture(hidden=12, layers=3, dropout=0.1)
    assert Architecture.from_json({**arch.to_json(), "future_key": 1}) == arch
    assert Architecture.from_json({"hidden": 5, "input_dropout": 0.2}) == Architecture(
        hidden=5, input_dropout=0.2
    )


def test_fields_older_model_files_lack_take_the_value_those_models_had() -> None:
    """Models saved before input dropout existed trained without it (a resume must not add it)."""
    old = Architecture.from_json({"hidden": 5, "layers": 1, "dropout": 0.3})
    assert old == Architecture(hidden=5, layers=1, dropout=0.3, input_dropout=ADDED_FIELDS["input_dropout"])
    assert old.input_dropout == 0.0 != Architecture().input_dropout


def test_the_options_module_imports_neither_numpy_nor_tensorflow() -> None:
    script = (
        "import sys, charlstm.options\n"
        "print(sorted(m for m in ('numpy', 'tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("hidden", 1, 0),
        ("epochs", 3, 2.5),
        ("dropout", 0.0, 1.0),
        ("learning_rate", 1e-9, 0.0),
        ("weight_decay", 0.0, float("nan")),
        ("init_shrink", 1.0, 0.0),
        ("average_from", 1.0, 1.01),
        ("seed", 2**31 - 1, -1),
        ("time_limit", 0.5, float("inf")),
        ("lr_schedule", "cosine", "linear"),
        ("batch_size", 16, True),
    ],
)
def test_the_cli_and_the_library_allow_the_same_values(name: str, good: object, bad: object) -> None:
    param = next(p for p in cli.commands["train"].params if p.name == name)
    convert = lambda value: param.type.convert(str(value), param, None)  # noqa: E731  (the command line's text)

    def opts(value: object) -> TrainOptions:
        if name in Architecture.__dataclass_fields__:
            return TrainOptions(architecture=Architecture(**{name: value}))
        return TrainOptions(**{name: value})

    assert convert(good) == good and disallowed(opts(good)) is None
    wrong = disallowed(opts(bad))
    assert wrong is not None and wrong[0] == name and allowed(name)[0].describe() in wrong[1]
    with pytest.raises(click.BadParameter):
        convert(bad)


@pytest.mark.parametrize(
    ("command", "options", "name", "good", "bad"),
    [
        ("generate", GenerateOptions, "count", 1, 0),
        ("generate", GenerateOptions, "temperature", 1e-9, 0.0),
        ("generate", GenerateOptions, "temperature", 2.5, float("nan")),
        ("generate", GenerateOptions, "top_k", 1, 0),
        ("generate", GenerateOptions, "min_length", 1, 0),
        ("generate", GenerateOptions, "max_length", 1, 1.5),
        ("blend", BlendOptions, "top", 1, 0),
        ("explain", ExplainOptions, "top", 1, -1),
    ],
)
def test_generate_blend_and_explain_allow_what_their_library_functions_allow(
    command: str, options: type, name: str, good: object, bad: object
) -> None:
    param = next(p for p in cli.commands[command].params if p.name == name)
    assert param.type.convert(str(good), param, None) == good and refusal(name, good, options) is None
    with pytest.raises(click.BadParameter):
        param.type.convert(str(bad), param, None)
    assert (
        refusal(name, bad, options) == f"{name} must be {allowed(name, options)[0].describe()} (got {bad!r})"
    )


def test_numpy_numbers_are_numbers() -> None:
    """A count or temperature computed with numpy is a number (the Python API accepted them before)."""
    assert refusal("count", np.int64(3), GenerateOptions) is None
    assert refusal("temperature", np.float32(0.5), GenerateOptions) is None
    assert (
        refusal("count", np.int64(0), GenerateOptions, label="n") == "n must be at least 1 (got np.int64(0))"
    )


def test_every_default_is_allowed_and_described() -> None:
    assert disallowed(TrainOptions()) is None
    for defaults in (GENERATE, BLEND, EXPLAIN):
        ranged = [f.name for f in fields(defaults) if f.metadata.get("allowed")]
        assert ranged and all(refusal(n, getattr(defaults, n), type(defaults)) is None for n in ranged)
    assert Allowed(low=0, high=1, high_open=True).describe() == "at least 0 and less than 1"
    assert Allowed(low=0, low_open=True).describe() == "greater than 0"
    assert Allowed(choices=("a", "b")).describe() == "one of a, b"
