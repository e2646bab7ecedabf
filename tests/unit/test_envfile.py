"""The env file ``cspulse run`` writes for later commands: precedence and clean-up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streams import envfile


def test_file_fills_only_what_the_environment_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / ".cspulse.env"
    path.write_text("# comment\nCSPULSE_REDIS_URL=redis://127.0.0.1:7/0\n"
                    "CSPULSE_TOPIC_PREFIX=from-file.\nOTHER=x\n")  # fmt: skip
    monkeypatch.delenv("CSPULSE_REDIS_URL", raising=False)
    monkeypatch.setenv("CSPULSE_TOPIC_PREFIX", "from-env.")
    monkeypatch.delenv("OTHER", raising=False)
    added = envfile.load(path)
    assert added == {"CSPULSE_REDIS_URL": "redis://127.0.0.1:7/0"}
    assert os.environ["CSPULSE_TOPIC_PREFIX"] == "from-env." and "OTHER" not in os.environ
    assert envfile.load(tmp_path / "absent.env") == {}


def test_written_file_is_private_and_removed_unless_rewritten(tmp_path: Path) -> None:
    path = tmp_path / ".cspulse.env"
    values = {"CSPULSE_KAFKA_BOOTSTRAP": "127.0.0.1:9"}
    with envfile.written(path, values, "written by a test\nsecond line"):
        assert path.read_text() == (
            "# written by a test\n# second line\nCSPULSE_KAFKA_BOOTSTRAP=127.0.0.1:9\n"
        )
        assert path.stat().st_mode & 0o777 == 0o600
    assert not path.exists()
    with envfile.written(path, values, "first"):
        path.write_text("CSPULSE_KAFKA_BOOTSTRAP=elsewhere:9\n")  # a second run took over
    assert path.exists()


def test_env_file_variable_names_another_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSPULSE_ENV_FILE", "/tmp/other.env")
    assert envfile.env_file_path() == Path("/tmp/other.env")
    monkeypatch.delenv("CSPULSE_ENV_FILE")
    assert envfile.env_file_path() == Path(".cspulse.env")
