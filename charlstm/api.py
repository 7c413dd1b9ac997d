"""The Python API: load a model, generate, score, classify, evaluate, explain, blend, train.

Every ``charlstm`` command is one call into this module, so what the command line
does, a script or notebook can do the same way::

    import charlstm
    model = charlstm.load()                      # the bundled model, or charlstm.load("pets")
    model.generate(5, seed=1, tag="female", prefix="el")
    charlstm.blend("Brad", "Angelina", top=3)

Inference runs in numpy with one BLAS thread, limited only while it runs (nothing is
set for the importing program). Nothing here imports TensorFlow except :func:`train`.
Errors are :class:`charlstm.CharlstmError` (bad data, model or options) and its
subclass :class:`charlstm.OptionError` (one unusable option, named by ``.option``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charlstm.checkpoint import ModelDir, bundled_model_dir, open_model, resolve_model_dir
from charlstm.log import Log, log_to_stderr
from charlstm.options import BLEND, EXPLAIN, GENERATE, PRIORS

if TYPE_CHECKING:
    from charlstm.blending import Blend
    from charlstm.evaluation import Classification, Evaluation, NameScore
    from charlstm.explain import Explanation
    from charlstm.sampling import Sample


def _one_blas_thread(method: Callable) -> Callable:
    """Run ``method`` with numpy's BLAS limited to one thread (small matrices: faster)."""

    @wraps(method)
    def limited(*args: Any, **kwargs: Any) -> Any:
        from charlstm.threads import single_blas_thread

        with single_blas_thread():
            return method(*args, **kwargs)

    return limited


class Model:
    """A trained names model, opened from its directory (see :func:`load`)."""

    def __init__(self, directory: ModelDir) -> None:
        self.directory = directory

    @property
    def path(self) -> Path:
        return self.directory.path

    @property
    def tags(self) -> list[str]:
        """The model's tags (its styles), empty for an untagged model."""
        return list(self.directory.meta.tags)

    def __repr__(self) -> str:
        return f"charlstm.Model({str(self.path)!r})"

    @_one_blas_thread
    def sample(self, n: int = GENERATE.count, **options: Any) -> list[Sample]:
        """``n`` sampled names with their log-probabilities and tags (lowercase).

        Options: ``seed``, ``temperature``, ``top_k``, ``prefix``, ``suffix``,
        ``contains``, ``exclude_letters``, ``min_length``, ``max_length``, ``unique``,
        ``novel``, ``tags`` (a list), ``full`` — as ``charlstm generate`` has them.
        """
        from charlstm.sampling import generate

        return generate(self.directory, n, **options)

    def generate(self, n: int = GENERATE.count, *, tag: str | None = None, **options: Any) -> list[str]:
        """``n`` new names, capitalised as ``charlstm generate`` prints them.

        ``tag`` picks one style of a tagged model (``tags=[...]`` mixes several); see
        :meth:`sample` for the other options.
        """
        if tag is not None:
            options["tags"] = [tag, *options.get("tags", ())]
        return [display_name(s.name, options.get("full", False)) for s in self.sample(n, **options)]

    @_one_blas_thread
    def score(self, names: Sequence[str], tag: str | None = None) -> list[NameScore]:
        """How likely the model finds each name (``log_prob``, ``nll_per_char``, ...)."""
        from charlstm.evaluation import score_texts

        return score_texts(self.directory, list(names), tag)

    @_one_blas_thread
    def classify(self, names: Sequence[str], prior: str = PRIORS[0]) -> list[Classification]:
        """P(tag | name) for every tag of a tagged model, best first."""
        from charlstm.evaluation import classify_names

        return classify_names(self.directory, list(names), prior)

    @_one_blas_thread
    def evaluate(
        self, names_file: str | Path, tag: str | None = None, log: Log = log_to_stderr
    ) -> Evaluation:
        """NLL per symbol on a names file (each line under its tag, else ``tag``); lines
        that cannot be read are skipped with a warning to ``log``."""
        from charlstm.data import load_names
        from charlstm.evaluation import evaluate_file

        corpus = load_names(names_file, self.directory.alphabet, max_length=10**6)
        if corpus.skipped_summary():
            log(f"warning: {corpus.skipped_summary()}")
        return evaluate_file(self.directory, corpus, tag)

    @_one_blas_thread
    def explain(self, name: str, tag: str | None = None, top: int = EXPLAIN.top) -> Explanation:
        """Every step of how the model predicts ``name`` (see ``charlstm explain``)."""
        from charlstm.explain import explain

        return explain(self.directory, name, top, tag)

    def info(self) -> dict:
        """What ``charlstm info`` prints: alphabet, architecture, tags, training record."""
        return self.directory.summary()


def display_name(name: str, full: bool = False) -> str:
    """A name as charlstm prints it: capitalised (a full name: each part)."""
    return " ".join(part.capitalize() for part in name.split(" ")) if full else name.capitalize()


def load(path: str | Path | None = None) -> Model:
    """Open a model: ``path``, else ``$CHARLSTM_MODEL``, else ``./charlstm-model``, else the
    bundled one (the word ``"bundled"`` names it too)."""
    return Model(open_model(resolve_model_dir(path)[0]))


@_one_blas_thread
def blend(
    word1: str,
    word2: str,
    top: int = BLEND.top,
    *,
    both_orders: bool = False,
    model: str | Path | None = None,
    words_model: str | Path | None = None,
) -> list[Blend]:
    """The ``top`` best portmanteaus of two words, best first, with their probabilities."""
    from charlstm.blending import Blender

    words = open_model(words_model or bundled_model_dir("words"))
    blender = Blender.open(open_model(resolve_model_dir(model)[0]), words)
    return blender.rank([(word1, word2)], top=top, both_orders=both_orders)[0]


def train(
    names_files: str | Path | Sequence[str | Path],
    model_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    log: Log = log_to_stderr,
    **options: Any,
) -> Model:
    """Train a model on names files into ``model_dir`` and open it.

    ``options`` are ``charlstm train``'s (``epochs``, ``time_limit``, ``seed``,
    ``hidden``, ``layers``, ``tag_by_file``, ...); progress goes to ``log`` (one line
    per call; default stderr). Imports TensorFlow, which takes seconds.
    """
    from charlstm.options import Architecture, TrainOptions
    from charlstm.training import train as train_files

    arch = {k: options.pop(k) for k in list(options) if k in Architecture.__dataclass_fields__}
    opts = TrainOptions(architecture=Architecture(**arch), **options)
    files = [names_files] if isinstance(names_files, str | Path) else list(names_files)
    given = frozenset(options) | frozenset(arch)
    train_files([str(f) for f in files], model_dir, opts, resume=resume, overwrite=overwrite, explicit=given,
                log=log)  # fmt: skip
    return Model(open_model(model_dir))
