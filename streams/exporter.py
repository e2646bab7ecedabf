"""The HTTP side: ``/metrics``, ``/healthz``, ``/readyz`` and ``/accounts/at-risk``.

Served by a small threaded WSGI server on its own thread, never on the event
loop that processes events, so a slow scrape cannot stall consumption. The
business gauges come from Redis at scrape time (a custom collector, as in
prometheus_client's docs), so every replica serves the same numbers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError

from aggregators.config import MetricConfig
from aggregators.health import HealthConfig
from aggregators.health_index import at_risk, band_counts
from aggregators.reader import Reader
from aggregators.readout import compute
from streams import telemetry
from streams.board import Board
from streams.catalogue import RETENTION_HELP, metric_families

log = logging.getLogger("cspulse.exporter")

HELP: dict[str, str] = {
    "cs_tickets_opened": "Tickets opened in the window",
    "cs_tickets_resolved": "Tickets first resolved in the window",
    "cs_fcr_ratio": "First-contact resolution share of tickets resolved in the window",
    "cs_first_response_seconds_avg": "Mean time from opening to first agent reply",
    "cs_resolution_seconds_avg": "Mean time from opening to first resolution",
    "cs_tickets_open": "Tickets open now (backlog)",
    "cs_survey_responses": "Survey responses in the window",
    "cs_nps": "Net Promoter Score (-100..100)",
    "cs_csat_ratio": "Satisfied share of CSAT answers",
    "cs_ces_avg": "Mean customer effort score (1-7, higher is easier)",
    "cs_feedback_comments": "Survey comments by sentiment",
    "cs_active_users": "Distinct users with a session event in the window",
    "cs_active_accounts": "Distinct accounts with a session event in the window",
    "cs_stickiness_ratio": "Active users 1d / active users 30d",
    "cs_product_usage_ratio": "Active accounts in the window / paying accounts now",
    "cs_sessions": "Sessions started in the window",
    "cs_time_in_app_seconds": "Active time in app in the window",
    "cs_time_in_app_seconds_per_user": "Active time in app per active user",
    "cs_sessions_active": "Sessions live now",
    "cs_mrr": "Monthly recurring revenue now (major units)",
    "cs_mrr_movement": "MRR movements in the window by kind (major units)",
    "cs_paying_accounts": "Accounts paying now",
    "cs_churned_accounts": "Paying -> not paying transitions in the window",
    "cs_churn_ratio": "Churned accounts / paying accounts at the window's start",
    "cs_retention_ratio": "(paying now - new and reactivated) / paying at the window's start",
    "cs_renewal_ratio": "Renewals / (renewals + cancellations at term end)",
    "cs_trial_conversion_ratio": "Trials converted / (converted + expired)",
    "cs_arpa": "Average revenue per paying account",
    "cs_clv": "Customer lifetime value: ARPA x gross margin / 30-day churn",
    "cs_retention_cost": "Customer-success cost in the window per paying account",
    "cs_payment_failures": "Failed invoices in the window",
    "cs_accounts_by_health": "Accounts per health band",
    "cs_health_score_avg": "Mean account health score",
    **RETENTION_HELP,
}


class RedisCollector(Collector):
    """Reads the business gauges from Redis on every scrape."""

    def __init__(self, reader: Reader, config: MetricConfig, health: HealthConfig) -> None:
        self.reader = reader
        self.config = config
        self.health = health
        self.last_ok = False

    def _health(self) -> Iterator[Metric]:
        """Health bands and mean from the score index (whole base only)."""
        try:
            counts, mean = band_counts(self.reader.redis, self.health)
        except (RedisError, OSError):
            return
        bands = _gauge("cs_accounts_by_health")
        for band, n in counts.items():
            for labels in _whole_base({"band": band}):
                bands.add_sample("cs_accounts_by_health", labels, n)
        yield bands
        if mean is not None:
            avg = _gauge("cs_health_score_avg")
            for labels in _whole_base({}):
                avg.add_sample("cs_health_score_avg", labels, mean)
            yield avg

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        families: dict[str, Metric] = {}
        latest: dict[str, float] = {}
        try:
            result = self.reader.read()
            self.last_ok = True
            latest = result.latest
            samples = compute(result.snapshot, self.config)
            for family in metric_families(samples, HELP, _serving_labels):
                families[family.name] = family
        except (RedisError, OSError) as exc:
            self.last_ok = False
            log.warning("scrape could not read Redis: %s", exc)
        yield from families.values()
        yield from self._health()
        yield _latest_family(latest)
        yield GaugeMetricFamily(
            "cs_redis_up", "1 when the scrape's Redis read succeeded", value=int(self.last_ok)
        )
        yield GaugeMetricFamily(
            "cs_collect_duration_seconds",
            "Time the scrape spent reading Redis",
            value=time.perf_counter() - started,
        )


def _gauge(name: str) -> Metric:
    return Metric(name, HELP.get(name, name), "gauge")


def _serving_labels(labels: dict[str, str]) -> list[dict[str, str]]:
    return _whole_base(labels) if labels.get("plan") == "all" else [labels]


def _whole_base(labels: dict[str, str]) -> list[dict[str, str]]:
    """The whole base is served twice: with the contract's labels exactly (no ``plan``),
    and with ``plan="all"`` beside the per-plan segments, for dashboards."""
    contract = {k: v for k, v in labels.items() if k != "plan"}
    return [contract, {**contract, "plan": "all"}]


def _latest_family(latest: dict[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "cs_latest_event_timestamp_seconds",
        "Largest event time applied (Unix seconds)",
        labels=["topic"],
    )
    for topic, ts in sorted(latest.items()):
        family.add_metric([topic], ts)
    return family


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood the log."""


StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class MetricsApp:
    """The WSGI application behind the metrics port."""

    def __init__(
        self,
        redis: Redis,
        config: MetricConfig,
        clock: str,
        ready: Callable[[], bool] = lambda: True,
        health: HealthConfig | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        health_config = health or HealthConfig.load()
        reader = Reader(redis, config, clock)
        self.collector = RedisCollector(reader, config, health_config)
        self.reader, self.health_config = reader, health_config
        self.registry.register(self.collector)
        self.board = Board(reader, config, health_config, telemetry.REGISTRY)
        self.ready = ready

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            body = generate_latest(self.registry) + generate_latest(telemetry.REGISTRY)
            return _reply(start_response, "200 OK", body, CONTENT_TYPE_LATEST)
        if path == "/healthz":
            return _reply(start_response, "200 OK", b"ok\n", "text/plain")
        if path == "/readyz":
            ok = self.ready()
            return _reply(
                start_response,
                "200 OK" if ok else "503 Service Unavailable",
                b"ready\n" if ok else b"not ready\n",
                "text/plain",
            )
        if path == "/accounts/at-risk":
            return self._at_risk(environ, start_response)
        served = self.board.handle(path, environ.get("QUERY_STRING", ""))
        if served is not None:
            return _reply(start_response, *served)
        return _reply(start_response, "404 Not Found", b"not found: try /metrics\n", "text/plain")

    def _at_risk(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        from urllib.parse import parse_qs

        query = parse_qs(environ.get("QUERY_STRING", ""))
        try:
            limit = max(1, min(1000, int(query.get("limit", ["20"])[0])))
        except ValueError:
            return _reply(
                start_response,
                "400 Bad Request",
                b'{"error": "limit must be an integer"}',
                "application/json",
            )
        rows = at_risk(self.reader.redis, self.health_config, limit, self.reader.reading_time())
        body = orjson.dumps(rows)
        return _reply(start_response, "200 OK", body, "application/json")


def _reply(
    start_response: StartResponse, status: str, body: bytes, content_type: str
) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def serve(app: MetricsApp, host: str, port: int) -> tuple[_Server, threading.Thread]:
    """Start serving on a daemon thread; returns the server (call shutdown() to stop)."""
    server = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="cspulse-metrics", daemon=True)
    thread.start()
    return server, thread
