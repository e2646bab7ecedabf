"""A real Prometheus scrapes cspulse's HTTP port under a web config (TLS and basic auth).

The scrape config is Prometheus's own ``scheme: https``, ``tls_config`` and
``basic_auth`` with a password file, as for any exporter using the
exporter-toolkit format; a second job with a wrong password must see 401.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import redis
import yaml

from aggregators.config import MetricConfig
from aggregators.windows import WindowSet
from streams.demo.embedded import Process, free_port, start_redis
from streams.exporter import MetricsApp, serve
from streams.webconfig import WebConfig
from tests.e2e.conftest import stop_group, wait_for
from tests.tls import issue, make_ca

PASSWORD = "scrape-pw-Willow-8812"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Process]:
    (tmp_path / "redis").mkdir()
    process = start_redis(tmp_path / "redis")
    yield process
    process.stop()


def _query(port: int, expr: str) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        data: Any = json.load(resp)
    return {r["metric"].get("job", ""): float(r["value"][1]) for r in data["data"]["result"]}


def _scrape_errors(port: int) -> dict[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5) as resp:
        data: Any = json.load(resp)
    return {t["labels"]["job"]: t["lastError"] for t in data["data"]["activeTargets"]}


def test_prometheus_scrapes_over_tls_with_basic_auth(redis_server: Process, tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not on PATH (Debian: apt-get install prometheus)")
    certs = issue(tmp_path, "server", make_ca(tmp_path, "web"))
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    web_yml = tmp_path / "web.yml"
    web_yml.write_text(
        f"tls_server_config:\n  cert_file: {certs.cert.name}\n  key_file: {certs.key.name}\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    app = MetricsApp(
        redis.Redis(port=redis_server.port), MetricConfig(windows=WindowSet.parse("1h:60"))
    )
    server = serve(app, "127.0.0.1", 0, WebConfig.load(web_yml))
    (tmp_path / "good").write_text(PASSWORD)
    (tmp_path / "bad").write_text("not-the-password")

    def job(name: str, password_file: str) -> dict[str, Any]:
        return {
            "job_name": name,
            "scheme": "https",
            "tls_config": {"ca_file": str(certs.ca)},
            "basic_auth": {
                "username": "prometheus",
                "password_file": str(tmp_path / password_file),
            },
            "static_configs": [{"targets": [f"127.0.0.1:{server.port}"]}],
        }

    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                "scrape_configs": [job("cspulse", "good"), job("intruder", "bad")],
            }
        )
    )
    port = free_port()
    with (tmp_path / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        up = wait_for(lambda: _both_jobs_scraped(port), 60, "both targets scraped", 0.5)
        assert up == {"cspulse": 1.0, "intruder": 0.0}
        assert _query(port, "cs_redis_up") == {"cspulse": 1.0}
        assert "401" in _scrape_errors(port)["intruder"]
    finally:
        stop_group(proc)
        server.shutdown()


def _both_jobs_scraped(port: int) -> dict[str, float] | None:
    try:
        up = _query(port, "up")
    except OSError:  # Prometheus not listening yet
        return None
    return up if len(up) == 2 else None
