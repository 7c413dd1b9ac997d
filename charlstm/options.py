"""Every option charlstm has, with its default and its choices, written once.

The CLI takes its defaults and ``Choice`` lists from here, and the library's
functions take theirs from here too. This module imports nothing of charlstm, no
TensorFlow and no numpy, and does no I/O (like nanoGPT's ``GPTConfig``, it is the
configuration beside the model).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

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


# Architecture fields added since models were first saved, with the value older models had.
ADDED_FIELDS = {"input_dropout": 0.0}


@dataclass(frozen=True)
class Architecture:
    """Shape of the network. Defaults keep Keras on its fused (cuDNN) LSTM kernel."""

    hidden: int = 256
    layers: int = 2
    dropout: float = 0.2
    input_dropout: float = 0.1  # hides a symbol type from a whole name (see model.build_model)
    recurrent_dropout: float = 0.0
    tag_dim: int = 16  # size of a tag's learned embedding (tagged models only)
    tag_input: str = TAG_INPUTS[0]  # where it enters (tagged models only)

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


def _per_invocation(default: object) -> object:
    """A field that a resumed run does not inherit from the saved one."""
    return field(default=default, metadata={"per_invocation": True})


@dataclass
class TrainOptions:
    """Everything ``charlstm train`` can set, with its defaults.

    A resumed run keeps the saved value of every option not given again, except the
    architecture (which must match) and the per-invocation ones (the time limit is a
    budget for one invocation, the strategy a property of the machine, ...).
    """

    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 4.5e-3  # AdamW's; measured on the names benchmark (README, Training)
    architecture: Architecture = field(default_factory=Architecture, metadata={"per_invocation": True})
    val_fraction: float = 0.1
    val_file: str | None = None
    seed: int = 0
    patience: int = 5
    clipnorm: float = 1.0
    weight_decay: float = 0.03  # AdamW's decoupled decay of the weight matrices (model.compile_model)
    max_name_length: int = MAX_NAME_LENGTH
    strict: bool = False
    tag_by_file: bool = False  # tag each file's names with the file's stem
    balance_tags: bool = False  # repeat rarer tags' names in every epoch (batches.tag_repeats)
    family_tag: str | None = None  # the tag of family names; default: "surname" if there is one
    init_from: str | None = None  # a model directory (or "bundled") to fine-tune from
    init_shrink: float = 1.0  # a fine-tuning starts from the base's weights times this ("shrink")
    soup: int = 1  # fine-tunings from the same start whose weights are averaged (training._soup)
    lr_schedule: str = LR_SCHEDULES[0]
    average_from: float = 0.35  # weight averaging's start, a share of the cosine schedule (callbacks)
    time_limit: float | None = _per_invocation(None)
    samples_per_epoch: int = _per_invocation(5)
    tensorboard: str | None = _per_invocation(None)
    state_interval: float = _per_invocation(STATE_INTERVAL)
    alphabet: str = _per_invocation(ALPHABETS[0])
    strategy: str = _per_invocation(STRATEGIES[0])

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
    """Defaults of sampling (``charlstm generate`` and :func:`charlstm.sampling.sample_names`)."""

    count: int = 10
    temperature: float = 1.0
    min_length: int = 1
    max_length: int = MAX_NAME_LENGTH
    unique: bool = True


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
BLEND_TOP = 10  # blends shown per pair
