"""The ``cspulse`` command line: run, worker, generate, topics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.config
import os
import time
from typing import Annotated, Any

import typer
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from aggregators.health import HealthConfig
from aggregators.windows import parse_duration
from streams.config import Settings
from streams.deadletter import deadletter_app, status
from streams.embedded import ServiceError, embedded_services
from streams.exporter import MetricsApp, serve
from streams.logs import logging_config
from streams.producer import GenerateOptions, generate_forever
from streams.topics import create_topics

app = typer.Typer(
    help="cspulse: live customer-success metrics from Kafka events, kept in Redis, "
    "served to Prometheus.",
    no_args_is_help=True,
    add_completion=False,
)
topics_app = typer.Typer(help="Manage cspulse's Kafka topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(deadletter_app, name="deadletter")
app.command("status")(status)

log = logging.getLogger("cspulse")

Bootstrap = Annotated[
    str | None,
    typer.Option(
        "--kafka-bootstrap", envvar="CSPULSE_KAFKA_BOOTSTRAP", help="Kafka host:port list."
    ),
]
RedisUrl = Annotated[
    str | None, typer.Option("--redis-url", envvar="CSPULSE_REDIS_URL", help="redis://host:port/db")
]
MetricsPort = Annotated[
    int, typer.Option("--metrics-port", envvar="CSPULSE_METRICS_PORT", help="Port of /metrics.")
]
Clock = Annotated[
    str,
    typer.Option(
        "--clock", envvar="CSPULSE_CLOCK", help="wall or watermark (deterministic replays)."
    ),
]
TopicPrefix = Annotated[
    str,
    typer.Option(
        "--topic-prefix", envvar="CSPULSE_TOPIC_PREFIX", help="Prefix of the topic names."
    ),
]
History = Annotated[
    str,
    typer.Option(
        "--history",
        help="Publish this much realistic history first (e.g. 30d; 0 for none), then go live.",
    ),
]
Windows = Annotated[
    str,
    typer.Option(
        "--windows", envvar="CSPULSE_WINDOWS", help="name:granularity list, e.g. 1h:60,1d:300."
    ),
]


def fail(message: str) -> None:
    """One clear line on stderr and exit code 2: no traceback for operator errors."""
    typer.secho(f"cspulse: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        fail(f"invalid configuration: {exc}")
        raise  # unreachable


def history_days(text: str) -> float:
    """``--history`` in days; a clear error for anything but 0 or 1 to 60 days."""
    try:
        days = parse_duration(text) / 86400
    except ValueError as exc:
        fail(f"--history: {exc}")
    if days and not 1 <= days <= 60:
        fail(f"--history must be 0 or between 1d and 60d, not {text}.")
    return days


def wait_for_redis(url: str, timeout: float) -> None:
    """Ping Redis until it answers, telling the user what is being tried."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        try:
            SyncRedis.from_url(url, socket_connect_timeout=2).ping()
            return
        except (RedisError, OSError) as exc:
            if time.monotonic() >= deadline:
                fail(f"cannot reach Redis at {url} ({exc}). Start Redis or set CSPULSE_REDIS_URL.")
            log.warning("Redis at %s not reachable (%s); retry %d", url, exc, attempt)
            time.sleep(min(2.0, 0.2 * attempt))


def ensure_topics(settings: Settings, bootstrap: str, timeout: float) -> None:
    """Create the topics, retrying until the broker answers or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        try:
            asyncio.run(asyncio.wait_for(create_topics(settings, bootstrap), 10))
            return
        except Exception as exc:
            if time.monotonic() >= deadline:
                fail(
                    f"cannot reach Kafka at {bootstrap} ({type(exc).__name__}: {exc}). "
                    "Start the broker or set CSPULSE_KAFKA_BOOTSTRAP."
                )
            typer.secho(
                f"cspulse: Kafka at {bootstrap} not reachable yet ({type(exc).__name__}); "
                f"retry {attempt}",
                err=True,
            )
            time.sleep(min(5.0, 0.5 * attempt))


def run_worker(
    settings: Settings,
    bootstrap: str,
    redis_url: str,
    *,
    generate: GenerateOptions | None = None,
    banner: str | None = None,
) -> None:
    """Start the Faust worker and the HTTP exporter; blocks until stopped."""
    from faust.worker import Worker as FaustWorker

    from streams.app import Worker

    worker = Worker(settings, bootstrap, Redis.from_url(redis_url))
    metrics = MetricsApp(
        SyncRedis.from_url(redis_url, socket_timeout=5),
        settings.metric_config(),
        settings.clock,
        ready=lambda: _ready(worker, redis_url),
        health=HealthConfig.load(settings.health_config),
    )
    try:
        server, _thread = serve(metrics, settings.metrics_host, settings.metrics_port)
    except OSError as exc:
        port = settings.metrics_port
        fail(f"cannot serve /metrics on port {port} ({exc}). Set CSPULSE_METRICS_PORT.")
    if generate is not None:
        opts = generate

        @worker.app.task  # type: ignore[untyped-decorator]
        async def _generator() -> None:
            await generate_forever(settings, bootstrap, opts)

    if banner:
        typer.secho(banner, fg=typer.colors.GREEN, err=True)
    faust_worker = FaustWorker(
        worker.app,
        loglevel=settings.log_level,
        logging_config=logging_config(settings.log_format, settings.log_level),
        quiet=True,
        redirect_stdouts=False,
    )
    try:
        faust_worker.execute_from_commandline()
    finally:
        server.shutdown()


def _ready(worker: Any, redis_url: str) -> bool:
    """Ready: Redis answers and the worker has joined its consumer group with partitions."""
    try:
        SyncRedis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2).ping()
        return bool(worker.app.consumer.assignment())
    except Exception:
        return False


@app.command()
def run(
    kafka_bootstrap: Bootstrap = None,
    redis_url: RedisUrl = None,
    metrics_port: MetricsPort = 9464,
    clock: Clock = "wall",
    accounts: Annotated[int, typer.Option(help="Accounts the event generator simulates.")] = 300,
    rate: Annotated[float, typer.Option(help="Generator intensity (1.0 = realistic).")] = 5.0,
    malformed_share: Annotated[
        float, typer.Option(help="Share of deliberately invalid events.")
    ] = 0.01,
    history: History = "30d",
) -> None:
    """Everything on one machine: embedded broker and Redis (when not configured),
    the worker, the /metrics endpoint and a realistic event generator."""
    settings = _settings(
        metrics_port=metrics_port, clock=clock, kafka_bootstrap=kafka_bootstrap, redis_url=redis_url
    )
    try:
        with embedded_services(not settings.kafka_bootstrap, not settings.redis_url) as (_, b, r):
            bootstrap = settings.kafka_bootstrap or b
            url = settings.redis_url or r
            assert bootstrap and url
            wait_for_redis(url, 30)
            ensure_topics(settings, bootstrap, 60)
            banner = (
                f"cspulse is running: metrics at http://127.0.0.1:{settings.metrics_port}/metrics "
                f"(Kafka {bootstrap}, Redis {url}). Ctrl-C stops everything."
            )
            options = GenerateOptions(
                accounts=accounts,
                intensity=rate,
                malformed_share=malformed_share,
                history_days=history_days(history),
            )
            run_worker(settings, bootstrap, url, generate=options, banner=banner)
    except ServiceError as exc:
        fail(str(exc))


@app.command()
def worker(
    kafka_bootstrap: Bootstrap = None,
    redis_url: RedisUrl = None,
    metrics_port: MetricsPort = 9464,
    clock: Clock = "wall",
    topic_prefix: TopicPrefix = "cs.",
    windows: Windows = "1h:60,1d:300,7d:3600,30d:3600",
    connect_timeout: Annotated[
        float, typer.Option(help="Seconds to keep retrying services at start.")
    ] = 60,
) -> None:
    """The stream processor alone, against configured Kafka and Redis; also serves /metrics."""
    settings = _settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        metrics_port=metrics_port,
        clock=clock,
        topic_prefix=topic_prefix,
        windows=windows,
    )
    if not settings.kafka_bootstrap or not settings.redis_url:
        fail("worker needs CSPULSE_KAFKA_BOOTSTRAP and CSPULSE_REDIS_URL (or use `cspulse run`).")
    assert settings.kafka_bootstrap and settings.redis_url
    wait_for_redis(settings.redis_url, connect_timeout)
    ensure_topics(settings, settings.kafka_bootstrap, connect_timeout)
    run_worker(settings, settings.kafka_bootstrap, settings.redis_url)


@app.command()
def generate(
    kafka_bootstrap: Bootstrap = None,
    topic_prefix: TopicPrefix = "cs.",
    accounts: Annotated[int, typer.Option(help="Accounts to simulate.")] = 200,
    users_per_account: Annotated[int, typer.Option(help="Users per account.")] = 8,
    rate: Annotated[float, typer.Option(help="Intensity multiplier (1.0 = realistic).")] = 1.0,
    duration: Annotated[float, typer.Option(help="Seconds to run (0 = until stopped).")] = 0,
    scenario: Annotated[str, typer.Option(help="normal or churn-spike.")] = "normal",
    malformed_share: Annotated[
        float, typer.Option(help="Share of deliberately invalid events.")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    history: History = "0",
) -> None:
    """Publish realistic events in real time (the embedded `run` does this for you)."""
    settings = _settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    if not settings.kafka_bootstrap:
        fail("generate needs CSPULSE_KAFKA_BOOTSTRAP (or --kafka-bootstrap).")
    assert settings.kafka_bootstrap
    options = GenerateOptions(
        accounts=accounts,
        users_per_account=users_per_account,
        intensity=rate,
        duration=duration,
        scenario=scenario,
        malformed_share=malformed_share,
        seed=seed,
        verbose=True,
        history_days=history_days(history),
    )
    ensure_topics(settings, settings.kafka_bootstrap, 30)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(generate_forever(settings, settings.kafka_bootstrap, options))


@topics_app.command("create")
def topics_create(
    kafka_bootstrap: Bootstrap = None,
    topic_prefix: TopicPrefix = "cs.",
    partitions: Annotated[
        int | None,
        typer.Option(envvar="CSPULSE_PARTITIONS", help="Partitions per topic (default 4)."),
    ] = None,
) -> None:
    """Create the event and dead-letter topics (existing ones are left alone)."""
    settings = _settings(
        kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, partitions=partitions
    )
    if not settings.kafka_bootstrap:
        fail("topics create needs CSPULSE_KAFKA_BOOTSTRAP (or --kafka-bootstrap).")
    assert settings.kafka_bootstrap
    ensure_topics(settings, settings.kafka_bootstrap, 30)
    typer.echo(f"topics ready: {', '.join(settings.all_topics)}")


def main() -> None:
    fmt = os.environ.get("CSPULSE_LOG_FORMAT", "text")
    level = os.environ.get("CSPULSE_LOG_LEVEL", "info")
    logging.config.dictConfig(logging_config(fmt, level))
    app()
