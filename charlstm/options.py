"""Every option charlstm has, with its default and the values it allows, written once.

The CLI takes its defaults, ``Choice`` lists and ranges (:class:`Allowed`) from here,
and the library's functions take theirs from here too; they check options given in
Python against the same ranges (:func:`refusal`). This module imports nothing of charlstm, no
TensorFlow and no numpy, and does no I/O (like nanoGPT's ``GPTConfig``, it is the
configuration beside the model).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import Field, asdict, dataclass, field, fields
from functools import cache

MAX_NAME_LENGTH = 32  # letters; longer training lines are skipped, longer samples discarded
FAMILY_TAG = "surname"  # a tagged model's family-name tag unless train --family-tag says otherwise

ALPHABETS = ("default", "auto")  # a-z with case and accents folded; or every symbol of the file
STRATEGIES = ("auto", "none", "mirrored", "multiworker")  # see charlstm.distribute
LR_SCHEDULES = ("auto", "plateau", "cosine")  # auto: cosine with a time limit, else plateau
# Where a name's tag enters the LSTM: its embedding beside every symbol's one-hot ("step"),
# the initial hidden and cell states computed from it ("state"), or both.
TAG_INPUTS = ("step", "state", "both")
PRIORS = ("uniform", "frequency")  # classify's prior over a tagged model's tags
STATE_INTERVAL = 60.0  # seconds of training between two state checkpoints, at most
BUNDLED = "bundled"  # the word for the bundled model wherever a model directory is asked for
MIN_VAL_NAMES = 5  # fewer held-out names than this cannot tell one epoch from the next
SMALL_FILE = 1000  # names; below this, train says how many it holds out


@dataclass(frozen=True)
class Allowed:
    """The values an option takes: a number from ``low`` to ``high`` (either end may be
    open or absent), or one of ``choices``. The CLI makes its Click types from it and
    the library checks options given in Python against it (:func:`refusal`)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        """What the values are, in words ("at least 1", "at least 0 and less than 1")."""
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        ends = []
        if self.low is not None:
            ends.append(f"{'greater than' if self.low_open else 'at least'} {self.low:g}")
        if self.high is not None:
            ends.append(f"{'less than' if self.high_open else 'at most'} {self.high:g}")
        return " and ".join(ends) or "a number"

    def allows(self, value: object, integer: bool) -> bool:
        """Whether ``value`` is one of these values (an ``int`` where ``integer``)."""
        if self.choices:
            return value in self.choices
        # numbers' ABCs: numpy's integers and floats count too, as they did in the checks this replaced
        if isinstance(value, bool) or not isinstance(value, numbers.Integral if integer else numbers.Real):
            return False
        if not math.isfinite(value):
            return False
        low_ok = self.low is None or (value > self.low if self.low_open else value >= self.low)
        return low_ok and (self.high is None or (value < self.high if self.high_open else value <= self.high))


AT_LEAST_1 = Allowed(low=1)
POSITIVE = Allowed(low=0, low_open=True)
NON_NEGATIVE = Allowed(low=0)
FRACTION = Allowed(low=0, high=1, high_open=True)  # a dropout rate, a share held out
SEEDS = Allowed(low=0, high=2**31 - 1)


def _allowed(default: object, allowed: Allowed) -> object:
    """A field with a default and the values it allows."""
    return field(default=default, metadata={"allowed": allowed})


def _per_invocation(default: object, allowed: Allowed | None = None) -> object:
    """A field that a resumed run does not inherit from the saved one."""
    return field(default=default, metadata={"per_invocation": True, "allowed": allowed})


# Architecture fields added since models were first saved, with the value older models had.
ADDED_FIELDS = {"input_dropout": 0.0}


@dataclass(frozen=True)
class Architecture:
    """Shape of the network. Defaults keep Keras on its fused (cuDNN) LSTM kernel."""

    hidden: int = _allowed(256, AT_LEAST_1)
    layers: int = _allowed(2, AT_LEAST_1)
    dropout: float = _allowed(0.2, FRACTION)
    input_dropout: float = _allowed(0.1, FRACTION)  # hides a symbol type from a name (model.build_model)
    recurrent_dropout: float = _allowed(0.0, FRACTION)
    tag_dim: int = _allowed(16, AT_LEAST_1)  # size of a tag's learned embedding (tagged models only)
    tag_input: str = _allowed(TAG_INPUTS[0], Allowed(choices=TAG_INPUTS))  # where it enters (tagged only)

    def to_json(self) -> dict:
        return asdict(self)

    def untagged(self) -> dict:
        """The fields that matter to a model without tags."""
        return {k: v for k, v in self.to_json().items() if not k.startswith("tag_")}

    @classmethod
    def from_json(cls, data: dict) -> Architecture:
        """Read ``model.json``'s architecture; a field older files lack takes the value
        those models had (:data:`ADDED_FIELDS`), not today's default."""
        known = {**ADDED_FIELDS, **data}
        return cls(**{k: known[k] for k in cls.__dataclass_fields__ if k in known})


@dataclass
class TrainOptions:
    """Everything ``charlstm train`` can set, with its defaults.

    A resumed run keeps the saved value of every option not given again, except the
    architecture (which must match) and the per-invocation ones (the time limit is a
    budget for one invocation, the strategy a property of the machine, ...).
    """

    epochs: int = _allowed(30, AT_LEAST_1)
    batch_size: int = _allowed(64, AT_LEAST_1)
    # AdamW's; measured on the names benchmark (README, Training)
    learning_rate: float = _allowed(4.5e-3, POSITIVE)
    architecture: Architecture = field(default_factory=Architecture, metadata={"per_invocation": True})
    val_fraction: float = _allowed(0.1, FRACTION)
    val_file: str | None = None
    seed: int = _allowed(0, SEEDS)
    patience: int = _allowed(5, AT_LEAST_1)
    clipnorm: float = _allowed(1.0, POSITIVE)
    # AdamW's decoupled decay of the weight matrices (model.compile_model)
    weight_decay: float = _allowed(0.03, NON_NEGATIVE)
    max_name_length: int = _allowed(MAX_NAME_LENGTH, AT_LEAST_1)
    strict: bool = False
    tag_by_file: bool = False  # tag each file's names with the file's stem
    balance_tags: bool = False  # repeat rarer tags' names in every epoch (batches.tag_repeats)
    family_tag: str | None = None  # the tag of family names; default: "surname" if there is one
    init_from: str | None = None  # a model directory (or "bundled") to fine-tune from
    # a fine-tuning starts from the base's weights times this ("shrink")
    init_shrink: float = _allowed(1.0, Allowed(low=0, high=1, low_open=True))
    # fine-tunings from the same start whose weights are averaged (training._soup)
    soup: int = _allowed(1, AT_LEAST_1)
    lr_schedule: str = _allowed(LR_SCHEDULES[0], Allowed(choices=LR_SCHEDULES))
    # weight averaging's start, a share of the cosine schedule (callbacks)
    average_from: float = _allowed(0.35, Allowed(low=0, high=1))
    time_limit: float | None = _per_invocation(None, POSITIVE)
    samples_per_epoch: int = _per_invocation(5, NON_NEGATIVE)
    tensorboard: str | None = _per_invocation(None)
    state_interval: float = _per_invocation(STATE_INTERVAL, NON_NEGATIVE)  # 0: after every batch
    alphabet: str = _per_invocation(ALPHABETS[0], Allowed(choices=ALPHABETS))
    strategy: str = _per_invocation(STRATEGIES[0], Allowed(choices=STRATEGIES))

    def to_json(self) -> dict:
        data = asdict(self)
        data["architecture"] = self.architecture.to_json()
        return data

    @classmethod
    def inherited(cls) -> tuple[str, ...]:
        """Names of the options a resumed run keeps from the saved run unless given again."""
        return tuple(f.name for f in fields(cls) if not f.metadata.get("per_invocation"))


@dataclass(frozen=True)
class GenerateOptions:
    """Sampling's defaults and ranges (``charlstm generate`` and :func:`charlstm.sampling.sample_names`)."""

    count: int = _allowed(10, AT_LEAST_1)
    temperature: float = _allowed(1.0, POSITIVE)
    top_k: int | None = _allowed(None, AT_LEAST_1)  # None: every symbol may be drawn
    min_length: int = _allowed(1, AT_LEAST_1)
    max_length: int = _allowed(MAX_NAME_LENGTH, AT_LEAST_1)
    unique: bool = True


@dataclass(frozen=True)
class BlendOptions:
    """``charlstm blend``'s (and :func:`charlstm.blend`'s)."""

    top: int = _allowed(10, AT_LEAST_1)  # blends shown per pair


@dataclass(frozen=True)
class ExplainOptions:
    """``charlstm explain``'s (and :func:`charlstm.explain.explain`'s)."""

    top: int = _allowed(5, AT_LEAST_1)  # likeliest other symbols shown at each step


@cache  # the CLI builds its types from it at start-up, one option at a time
def _fields(options: type) -> dict[str, Field]:
    """The fields of an options class by name; train's include its architecture's."""
    classes = (Architecture, TrainOptions) if options is TrainOptions else (options,)
    return {f.name: f for cls in classes for f in fields(cls)}


def allowed(name: str, options: type = TrainOptions) -> tuple[Allowed, bool]:
    """The values option ``name`` of ``options`` allows, and whether it is an integer."""
    found = _fields(options)[name]
    return found.metadata["allowed"], found.type.startswith("int")


def refusal(name: str, value: object, options: type = TrainOptions, label: str | None = None) -> str | None:
    """Why option ``name`` of ``options`` cannot be ``value`` ("hidden must be at least 1 (got 0)",
    naming it ``label`` if given); None when it can (None means unset)."""
    rule, integer = allowed(name, options)
    if value is None or rule.allows(value, integer):
        return None
    return f"{label or name} must be {rule.describe()} (got {value!r})"


def disallowed(opts: TrainOptions) -> tuple[str, str] | None:
    """The first option of ``opts`` (its architecture's included) set to a value it does not
    allow, and why; None when every value is allowed."""
    for name, found in _fields(TrainOptions).items():
        if found.metadata.get("allowed") is None:
            continue
        value = getattr(opts.architecture if name in Architecture.__dataclass_fields__ else opts, name)
        why = refusal(name, value)
        if why:
            return name, why
    return None


# What fine-tuning (train --init-from) changes in train's defaults; an option given on the
# command line wins. Measured with benchmarks/bench_finetune.py on 300-name files: half the
# base's weights, dropout 0.4 and batches of 16 beat the base's weights as they are and
# train's batches of 64; train's input dropout of 0.1 beat the bundled base's 0 on the
# three benchmark files and on four of six more; a learning rate of 3e-3 did better overall
# than 1e-3, 3e-4 and train's 4.5e-3; the average of four fine-tunings' weights (a model
# soup) beat each (README).
FINETUNE_DEFAULTS: dict[str, float] = {
    "init_shrink": 0.5,
    "dropout": 0.4,
    "input_dropout": 0.1,
    "batch_size": 16,
    "learning_rate": 3e-3,
    "soup": 4,
}


TRAIN = TrainOptions()
GENERATE = GenerateOptions()
BLEND = BlendOptions()
EXPLAIN = ExplainOptions()
