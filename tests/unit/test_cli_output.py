"""The command line through real processes: --version, and no secret in --help."""

from __future__ import annotations

import os
import subprocess
import sys

from streams.telemetry import version

SECRET = "env-secret-Topaz-4471"


def _cspulse(*args: str, **env: str) -> tuple[int, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CSPULSE_")}
    environ.update(COLUMNS="200", CSPULSE_ENV_FILE=os.devnull, **env)  # no demo's .cspulse.env
    result = subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stdout + result.stderr


def test_version_prints_the_installed_version() -> None:
    code, out = _cspulse("--version")
    assert code == 0 and out == f"cspulse {version()}\n"


def test_help_shows_no_secret_from_the_environment() -> None:
    env = {
        "CSPULSE_REDIS_URL": f"redis://:{SECRET}@127.0.0.1:1/0",
        "CSPULSE_REDIS_PASSWORD": SECRET,
        "CSPULSE_KAFKA_SASL_PASSWORD": SECRET,
    }
    for command in ("worker", "run", "generate"):
        code, out = _cspulse(command, "--help", **env)
        assert code == 0 and "--kafka-security-protocol" in out, out
        assert SECRET not in out


def test_invalid_security_settings_fail_in_one_line_without_the_secret() -> None:
    code, out = _cspulse(
        "generate",
        CSPULSE_KAFKA_BOOTSTRAP="127.0.0.1:1",
        CSPULSE_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        CSPULSE_KAFKA_SASL_PASSWORD=SECRET,
    )
    assert code == 2 and len(out.strip().splitlines()) == 1, out
    assert "needs CSPULSE_KAFKA_SASL_USERNAME" in out and SECRET not in out
