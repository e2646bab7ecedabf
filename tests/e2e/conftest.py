"""End-to-end world: real broker, Redis, workers, generators and Prometheus servers.

Two independent deployments run side by side on one Tansu broker, so the
slow churn-spike scenario (its burst starts two minutes of event time after
the generator starts) runs while the dashboards are checked on normal
traffic. Each deployment has its own topics, Redis, ``cspulse worker``,
``cspulse generate`` and a Prometheus that scrapes only that worker every
second and evaluates a copy of the shipped alert rules. The normal
deployment also gets a handful of hand-written events a fresh world lacks
(``incidents``). Everything listens on 127.0.0.1; every process is stopped
(its process group killed) at the end of the session, on SIGTERM too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from streams.config import Settings
from streams.demo.embedded import Process, free_port, spawn, start_broker, start_redis
from streams.demo.world import _activity  # the daily cycle, see normal_traffic
from streams.topics import create_topics
from tests.harness import Stack, WorkerProcess, dumps, publish
from tests.scenarios import event

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
PARTITIONS = 2
T = TypeVar("T")


class QueryError(RuntimeError):
    """Prometheus answered a query with an error (bad expression, timeout...)."""


def wait_for(probe: Callable[[], T], timeout: float, what: str, interval: float = 1.0) -> T:
    """Call ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)


def stop_group(proc: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ------------------------------------------------------------------ Prometheus


def shortened_rules(workdir: Path) -> Path:
    """A copy of the shipped rules with every ``for:`` shortened to 5s.

    Test only: the shipped deploy/prometheus/rules.yml is unchanged (and its
    real durations are covered by promtool in rules_test_business.yml). A few minutes
    of run cannot wait out ``for: 5m`` / ``1h``; the expressions are the
    shipped ones, byte for byte.
    """
    text, count = re.subn(r"^(\s+)for: \S+$", r"\1for: 5s", SHIPPED_RULES.read_text(), flags=re.M)
    assert count == text.count("- alert:"), "every rule should have had a for: duration"
    path = workdir / "rules.yml"
    path.write_text(text)
    return path


def prometheus_config(workdir: Path, metrics_port: int) -> Path:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(shortened_rules(workdir))],
        "scrape_configs": [
            {"job_name": "cspulse", "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}
        ],
    }
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class Prometheus:
    """A real ``prometheus`` server and a tiny client for its HTTP API."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @classmethod
    def start(cls, binary: str, workdir: Path, metrics_port: int) -> Prometheus:
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        argv = [
            binary,
            f"--config.file={prometheus_config(workdir, metrics_port)}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        prom = cls(
            spawn(argv, workdir / "prometheus.log", cwd=workdir), port, workdir / "prometheus.log"
        )
        wait_for(prom.ready, 60, f"prometheus ready on :{port}\n{tail(prom.log_path)}", 0.3)
        return prom

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"prometheus exited {self.proc.returncode}:\n{tail(self.log_path)}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
            raise QueryError(f"HTTP {exc.code}: {body.get('error', body)}") from exc
        if body.get("status") != "success":
            raise QueryError(str(body))
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; a scalar or string result is returned as one sample."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("vector", "matrix"):
            return list(data["result"])
        return [{"metric": {}, "value": data["result"]}]

    def alerts(self, name: str) -> list[dict[str, Any]]:
        """Pending or firing alerts called ``name``."""
        return [a for a in self.api("alerts")["alerts"] if a["labels"].get("alertname") == name]

    def rule(self, name: str) -> dict[str, Any]:
        for group in self.api("rules")["groups"]:
            for rule in group["rules"]:
                if rule["name"] == name:
                    return dict(rule)
        raise AssertionError(f"rule {name} not loaded")

    def stop(self) -> None:
        stop_group(self.proc)


# ----------------------------------------------------------------- deployments


@dataclass(frozen=True)
class Traffic:
    """What ``cspulse generate`` simulates for one deployment."""

    scenario: str
    accounts: int
    rate: float
    seed: int
    duration: int = 900  # longer than the session; stopped at the end anyway

    def argv(self, bootstrap: str, prefix: str) -> list[str]:
        return [
            sys.executable, "-m", "streams", "generate",
            "--kafka-bootstrap", bootstrap, "--topic-prefix", prefix,
            "--scenario", self.scenario, "--accounts", str(self.accounts),
            "--rate", str(self.rate), "--seed", str(self.seed),
            "--duration", str(self.duration),
        ]  # fmt: skip


@dataclass
class Deployment:
    """One cspulse deployment: topics, Redis, worker, generator, Prometheus."""

    name: str
    stack: Stack
    redis: Process
    prefix: str
    worker: WorkerProcess | None = None
    generator: subprocess.Popen[bytes] | None = None
    prometheus: Prometheus | None = None
    generator_started: float = 0.0
    children: list[Callable[[], object]] = field(default_factory=list)

    @property
    def prom(self) -> Prometheus:
        assert self.prometheus is not None
        return self.prometheus

    def start_worker(self) -> None:
        asyncio.run(
            create_topics(
                Settings(topic_prefix=self.prefix, partitions=PARTITIONS), self.stack.bootstrap
            )
        )
        # wall clock: the generator's events are real time, as in production
        self.worker = self.stack.new_worker(
            self.prefix, f"cspulse-e2e-{self.name}", CSPULSE_CLOCK="wall"
        )
        self.children.append(self.worker.stop)
        self.worker.start()

    def start_generator(self, traffic: Traffic) -> None:
        log_path = self.stack.workdir / f"generate-{self.name}.log"
        self.generator = spawn(traffic.argv(self.stack.bootstrap, self.prefix), log_path)
        self.children.append(lambda: stop_group(self.generator))
        self.generator_started = time.monotonic()

    def start_prometheus(self, binary: str) -> None:
        assert self.worker is not None
        self.prometheus = Prometheus.start(
            binary, self.stack.workdir / f"prometheus-{self.name}", self.worker.port
        )
        self.children.append(self.prometheus.stop)

    def running_for(self) -> float:
        """Seconds since the generator started."""
        return time.monotonic() - self.generator_started

    def publish(self, events: list[tuple[str, bytes]]) -> None:
        """Publish (topic suffix, value) pairs, keyed by account like the generator."""
        messages = [(f"{self.prefix}{topic}", _key(value), value) for topic, value in events]
        publish(self.stack.bootstrap, messages)

    def logs(self) -> str:
        worker = self.worker.tail() if self.worker else ""
        generator = tail(self.stack.workdir / f"generate-{self.name}.log")
        return f"--- worker {self.name}\n{worker}\n--- generator {self.name}\n{generator}"

    def stop(self) -> None:
        for stop in reversed(self.children):
            with contextlib.suppress(Exception):
                stop()
        self.redis.stop()


def _key(value: bytes) -> bytes:
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return str(json.loads(value)["data"]["account_id"]).encode()
    return b"e2e"


def new_deployment(name: str, bootstrap: str, workdir: Path) -> Deployment:
    home = workdir / name
    home.mkdir()
    redis_proc = start_redis(home)
    stack = Stack(bootstrap, f"redis://127.0.0.1:{redis_proc.port}/0", home)
    return Deployment(name, stack, redis_proc, prefix=f"e2e-{name}.")


DAY = 86400


def incidents(now: float) -> list[tuple[str, bytes]]:
    """Hand-written events that a world whose history began an hour ago lacks or rarely has.

    - a customer paying for two days who renewed and now cancels: the 1d
      churn and retention ratios divide by the accounts paying at the
      window's start, and every generated subscription started within the
      last hour; generated renewals come about one every two minutes;
    - a trial converting: generated trials last 3 hours, a few end per hour;
    - a change dated before that subscription's newest applied event (stale);
    - one event published twice (duplicate), one 40 days old (too late) and
      one that is not JSON (invalid): the pipeline board plots counters that
      only exist once they have counted something.
    """
    loyal = {"plan": "team", "currency": "USD", "subscription_id": "L1"}
    trial = {"plan": "starter", "currency": "USD", "subscription_id": "T1", "mrr_cents": 4900}
    billing = [
        event("subscription.started", now - 2 * DAY, "e2e-loyal", mrr_cents=19900, **loyal),
        event("subscription.changed", now - 3 * DAY, "e2e-loyal", mrr_cents=9900, **loyal),
        event("subscription.renewed", now - 900, "e2e-loyal", subscription_id="L1"),
        event("subscription.canceled", now - 300, "e2e-loyal", subscription_id="L1"),
        event("subscription.started", now - 1800, "e2e-trial", trial=True, **trial),
        event("trial.converted", now - 600, "e2e-trial", **trial),
    ]
    twice = dumps(event("ticket.opened", now - 60, "e2e-dup", ticket_id="D1", channel="email"))
    late = dumps(event("ticket.opened", now - 40 * DAY, "e2e-late", ticket_id="OLD"))
    tickets = [twice, twice, late, b"not json"]
    return [("billing", dumps(e)) for e in billing] + [("tickets", v) for v in tickets]


def normal_traffic(now: float) -> Traffic:
    """``--rate 5`` at the busiest hour, scaled up off-peak to the same volume.

    The generator follows a daily cycle (a weekend night is about 12 times
    quieter than a weekday at 13:00 UTC); uncompensated, a few minutes at
    night bring too few survey answers for the NPS, CSAT and CES panels.
    """
    return Traffic("normal", accounts=200, rate=round(5 / _activity(int(now * 1000)), 1), seed=1)


# 500 accounts: 40 % of ~380 paying cancel over 5 minutes, so the fresh-deploy
# branch of ChurnSpike (>= 20 churned in an hour) is reached within a minute.
CHURN = Traffic("churn-spike", accounts=500, rate=1, seed=2)


@dataclass
class World:
    normal: Deployment
    churn: Deployment


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (Debian: apt-get install prometheus)")
    workdir = tmp_path_factory.mktemp("e2e")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    broker = start_broker(workdir)
    bootstrap = f"127.0.0.1:{broker.port}"
    deployments: list[Deployment] = []
    try:
        for name in ("churn", "normal"):  # churn first: it is the long pole
            deployments.append(new_deployment(name, bootstrap, workdir))
        for dep, traffic in zip(deployments, (CHURN, normal_traffic(time.time())), strict=True):
            dep.start_worker()
            dep.start_generator(traffic)
        for dep in deployments:
            dep.start_prometheus(binary)
        deployments[1].publish(incidents(time.time()))
        yield World(normal=deployments[1], churn=deployments[0])
    finally:
        for dep in deployments:
            dep.stop()
        broker.stop()
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (``timeout 900 pytest``) as Ctrl-C, so the teardown above still runs."""
    raise KeyboardInterrupt(f"signal {signum}")
