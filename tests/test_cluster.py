"""The cluster and logical devices, read before TensorFlow starts: clear errors for bad settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from charlstm.cli import cli
from charlstm.cluster import LOGICAL_CPUS_ENV


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    "tf_config, message",
    [
        (None, "set TF_CONFIG on each machine"),
        ("{cluster", "TF_CONFIG: not valid JSON"),
        (
            '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 1}}',
            "not in the cluster",
        ),
        ('{"cluster": {"ps": ["localhost:1"]}, "task": {"type": "ps"}}', "only 'chief' and 'worker' jobs"),
    ],
)
def test_multiworker_without_a_usable_tf_config_is_a_clear_error(
    names_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tf_config: str | None, message: str
) -> None:
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    model = tmp_path / "m"
    result = run("train", str(names_file), "--strategy", "multiworker", "--model", str(model))
    assert result.exit_code == 1 and message in result.stderr, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output and not model.exists()


def test_bad_logical_cpu_count_is_a_clear_error(names_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOGICAL_CPUS_ENV, "two")
    result = run("train", str(names_file), "--model", "m")
    assert result.exit_code == 1 and f"{LOGICAL_CPUS_ENV}='two'" in result.stderr
