"""One BLAS thread for numpy inference (charlstm.threads), scoped: nothing is set on import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from charlstm.cli import cli


def test_importing_charlstm_sets_nothing_process_wide() -> None:
    script = (
        "import os\n"
        "import charlstm, charlstm.cli, charlstm.npmodel, charlstm.sampling, charlstm.webpage\n"
        "print(sorted(k for k in os.environ if k.endswith('_NUM_THREADS')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "[]"


def test_inference_commands_run_on_one_blas_thread_and_restore_it(
    monkeypatch: pytest.MonkeyPatch, random_model_dir: Path
) -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    blas = lambda: [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]  # noqa: E731
    seen: list[list[int]] = []

    def fake_sample_names(*args, **kwargs) -> list:
        seen.append(blas())
        return []

    monkeypatch.setattr("charlstm.sampling.sample_names", fake_sample_names)
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas()
        result = CliRunner().invoke(cli, ["generate", "--model", str(random_model_dir)])
        assert result.exit_code == 0, result.output
        assert seen and set(seen[0]) == {1}
        assert blas() == before
