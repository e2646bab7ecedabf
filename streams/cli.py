"""The ``cspulse`` command line: run, worker, generate, topics."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import logging.config
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from aiokafka.errors import KafkaError
from redis.asyncio import Redis

from aggregators.clock import clock_named
from aggregators.connection import async_client
from aggregators.health import HealthConfig
from aggregators.status import ping
from aggregators.windows import parse_duration
from streams import envfile
from streams.config import DEFAULTS, Settings
from streams.deadletter import deadletter_app, status
from streams.demo.embedded import ServiceError, embedded_services
from streams.demo.producer import GenerateOptions, generate_forever
from streams.demo.world import HISTORY_ACTIVITY
from streams.exporter import HttpServer, MetricsApp, serve
from streams.ingest_cli import open_ingest, register
from streams.kafka_options import describe_failure
from streams.logs import logging_config, redact, redact_standard_streams, register_secrets
from streams.options import (
    NO_SECURITY,
    Bootstrap,
    ClockOption,
    History,
    KafkaSecurity,
    MetricsHost,
    MetricsPort,
    RedisPassword,
    RedisUrl,
    TopicPrefix,
    WebConfigFile,
    Windows,
    with_kafka_security,
)
from streams.startup import (
    check_redis_layout,
    ensure_topics,
    fail,
    redis_options_from_env,
    sync_redis,
    wait_for_redis,
)
from streams.supervisor import Supervisor
from streams.telemetry import version
from streams.webconfig import WebConfig

GENERATE = GenerateOptions()
"""``cspulse generate``'s defaults (``run`` sets its own)."""
ENV_FILE_HELP = (
    "Write the Kafka and Redis addresses to this file while running (scripts/run: "
    ".cspulse.env), so other cspulse commands run in its directory find them."
)
ENV_FILE_COMMENT = "Written by `cspulse run`; removed when it stops.\n{banner}"
RATE_HELP = (
    "Activity of the simulated customers (sessions, tickets, surveys per account): 1.0 is a "
    f"busy weekday peak. The history is made at {HISTORY_ACTIVITY:g} (or this rate if lower), "
    "so a higher rate makes the live hours busier than the history. Subscriptions are not scaled."
)

app = typer.Typer(
    help="cspulse: live customer-success metrics from Kafka events, kept in Redis, "
    "served to Prometheus.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals hold passwords
)
topics_app = typer.Typer(help="Manage cspulse's Kafka topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(deadletter_app, name="deadletter")
app.command("status")(status)
register(app)  # ingest, import

log = logging.getLogger("cspulse")
OPERATOR_COMMANDS = {"status", "deadletter", "topics"}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cspulse {version()}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """cspulse: live customer-success metrics from Kafka events, kept in Redis, served to
    Prometheus. Commands other than run read CSPULSE_* variables from .cspulse.env here
    (or $CSPULSE_ENV_FILE), which `scripts/run` writes; the environment wins."""
    if ctx.invoked_subcommand != "run":  # run starts its own services
        envfile.load()
    if ctx.invoked_subcommand in OPERATOR_COMMANDS:  # tables, not client chatter
        logging.getLogger("aiokafka").setLevel(logging.WARNING)


def _settings(security: KafkaSecurity = NO_SECURITY, **overrides: Any) -> Settings:
    """Settings from the environment, overridden by the flags given (named like the fields)."""
    fields = Settings.model_fields
    given = {**overrides, **security}
    try:
        settings = Settings(**{k: v for k, v in given.items() if v is not None and k in fields})
    except ValueError as exc:
        fail(f"invalid configuration: {_first_error(exc)}")
        raise  # unreachable
    register_secrets(settings.secrets())
    return settings


def history_days(text: str) -> float:
    """``--history`` in days; a clear error for anything but 0 or 1 to 60 days."""
    try:
        days = parse_duration(text) / 86400
    except ValueError as exc:
        fail(f"--history: {exc}")
    if days and not 1 <= days <= 60:
        fail(f"--history must be 0 or between 1d and 60d, not {text}.")
    return days


def _first_error(exc: ValueError) -> str:
    """pydantic's message without its documentation links, on one line."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = [
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in errors()
        ]
        return "; ".join(p.removeprefix("settings: ").removeprefix("Value error, ") for p in parts)
    return str(exc)


def run_worker(
    settings: Settings,
    bootstrap: str,
    redis_url: str,
    *,
    generate: GenerateOptions | None = None,
    banner: str | None = None,
    with_ingest: bool = False,
) -> None:
    """Start the worker and the HTTP exporter (and the ingest port); blocks until SIGTERM."""
    from streams.app import Worker

    async def main() -> None:
        worker = Worker(settings, bootstrap, redis_client(settings, redis_url))
        worker.stop_on_signals()
        metrics = MetricsApp(
            sync_redis(settings, redis_url, socket_timeout=5),
            settings.metric_config(),
            clock_named(settings.clock),
            ready=lambda: _ready(worker, settings, redis_url),
            health=HealthConfig.load(settings.health_config),
        )
        server = _serve(settings, metrics)
        ingesting = open_ingest(settings, bootstrap, enabled=with_ingest, beside_worker=True)
        generator = None
        if generate is not None:
            options = dataclasses.replace(generate, worker_ready=lambda: bool(worker.assignment()))
            generator = asyncio.create_task(generate_forever(settings, bootstrap, options))
        if banner:
            typer.secho(banner, fg=typer.colors.GREEN, err=True)
        try:
            await worker.run()
        except KafkaError as exc:  # e.g. the group's ACLs, checked only once consuming
            line = describe_failure(exc, settings, bootstrap)
            if line is None:
                raise
            fail(line)
        finally:
            if generator is not None:
                generator.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await generator
            server.shutdown()
            await ingesting.close()

    asyncio.run(main())


def redis_client(settings: Settings, url: str) -> Redis:
    """The worker's Redis client: bounded connect and read times, periodic health checks.

    Without timeouts a blackholed Redis would hang the worker, partitions held, for
    as long as the kernel keeps the connection; with them it retries and recovers.
    """
    extra = settings.redis_options() if url == settings.redis_url else {}
    client: Redis = async_client(redis_options_from_env(url), **extra)
    return client


def _serve(settings: Settings, metrics: MetricsApp) -> HttpServer:
    """Start the HTTP port with the web config; fail in one line if either is wrong."""
    try:
        web = WebConfig.load(settings.web_config_file)
    except ValueError as exc:
        fail(str(exc))
    try:
        return serve(
            metrics,
            settings.metrics_host,
            settings.metrics_port,
            web,
            max_connections=settings.web_max_connections,
            request_timeout=settings.web_request_timeout,
        )
    except OSError as exc:
        where = f"{settings.metrics_host}:{settings.metrics_port}"
        fail(
            f"cannot serve /metrics on {where} ({exc.strerror or exc}). "
            "Set CSPULSE_METRICS_PORT or CSPULSE_METRICS_HOST."
        )
        raise  # unreachable


def _ready(worker: Any, settings: Settings, redis_url: str) -> bool:
    """Ready: Redis answers and the worker has joined its consumer group with partitions."""
    try:
        ping(sync_redis(settings, redis_url, socket_timeout=2, socket_connect_timeout=2))
        return bool(worker.assignment())
    except Exception:
        return False


@app.command()
@with_kafka_security
def run(
    kafka_bootstrap: Bootstrap = None,
    redis_url: RedisUrl = None,
    metrics_port: MetricsPort = DEFAULTS.metrics_port,
    clock: ClockOption = DEFAULTS.clock,
    accounts: Annotated[int, typer.Option(help="Accounts the event generator simulates.")] = 300,
    rate: Annotated[float, typer.Option(help=RATE_HELP)] = HISTORY_ACTIVITY,
    malformed_share: Annotated[
        float, typer.Option(help="Share of deliberately invalid events.")
    ] = 0.01,
    history: History = "30d",
    redis_password: RedisPassword = None,
    security: KafkaSecurity = NO_SECURITY,
    web_config_file: WebConfigFile = None,
    env_file: Annotated[Path | None, typer.Option(help=ENV_FILE_HELP)] = None,
) -> None:
    """Everything on one machine: embedded broker and Redis (when not configured), the worker,
    /metrics and the ingest port (on 127.0.0.1 only) and a realistic event generator."""
    given = {k: v for k, v in locals().items() if k != "env_file"}
    settings = _settings(**given, metrics_host="127.0.0.1", ingest_host="127.0.0.1")
    try:
        with embedded_services(not settings.kafka_bootstrap, not settings.redis_url) as (_, b, r):
            bootstrap = settings.kafka_bootstrap or b
            url = settings.redis_url or r
            assert bootstrap and url
            if not settings.kafka_bootstrap:  # the embedded broker speaks plain Kafka only
                settings = settings.model_copy(update={"kafka_security_protocol": "PLAINTEXT"})
            wait_for_redis(settings, url, 30)
            check_redis_layout(settings, url, claim=True)
            ensure_topics(settings, bootstrap, 60)
            scheme = "https" if _serves_tls(settings) else "http"
            banner = (
                f"cspulse is running: metrics at {scheme}://127.0.0.1:{settings.metrics_port}"
                f"/metrics, board at /. Kafka {bootstrap}, Redis {redact(url)}"
                + (f", written to {env_file}" if env_file else "")
                + ". Ctrl-C stops everything."
            )
            options = GenerateOptions(
                accounts=accounts,
                intensity=rate,
                malformed_share=malformed_share,
                history_days=history_days(history),
            )
            addresses = {"CSPULSE_KAFKA_BOOTSTRAP": bootstrap, "CSPULSE_REDIS_URL": url}
            with envfile.written(env_file, addresses, ENV_FILE_COMMENT.format(banner=banner)):
                run_worker(
                    settings, bootstrap, url, generate=options, banner=banner, with_ingest=True
                )
    except ServiceError as exc:
        fail(str(exc))


def _serves_tls(settings: Settings) -> bool:
    try:
        return WebConfig.load(settings.web_config_file).tls is not None
    except ValueError:
        return False


@app.command()
@with_kafka_security
def worker(
    kafka_bootstrap: Bootstrap = None,
    redis_url: RedisUrl = None,
    metrics_port: MetricsPort = DEFAULTS.metrics_port,
    clock: ClockOption = DEFAULTS.clock,
    topic_prefix: TopicPrefix = DEFAULTS.topic_prefix,
    windows: Windows = DEFAULTS.windows,
    connect_timeout: Annotated[
        float, typer.Option(help="Seconds to keep retrying services at start.")
    ] = 60,
    metrics_host: MetricsHost = DEFAULTS.metrics_host,
    redis_password: RedisPassword = None,
    security: KafkaSecurity = NO_SECURITY,
    web_config_file: WebConfigFile = None,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="CSPULSE_PROCESSES",
            help="Worker processes in the group (one per core); process i serves "
            "/metrics on the metrics port + i.",
        ),
    ] = 1,
) -> None:
    """The stream processor alone, against configured Kafka and Redis; also serves /metrics."""
    settings = _settings(**locals())
    if not settings.kafka_bootstrap or not settings.redis_url:
        fail("worker needs CSPULSE_KAFKA_BOOTSTRAP and CSPULSE_REDIS_URL (or use `cspulse run`).")
    assert settings.kafka_bootstrap and settings.redis_url
    wait_for_redis(settings, settings.redis_url, connect_timeout)
    check_redis_layout(settings, settings.redis_url, claim=True)
    ensure_topics(settings, settings.kafka_bootstrap, connect_timeout)
    if processes > 1:
        child = functools.partial(_worker_process, settings.model_dump())
        raise typer.Exit(Supervisor(child, processes).run())
    run_worker(settings, settings.kafka_bootstrap, settings.redis_url)


def _worker_process(fields: dict[str, Any], index: int) -> None:
    """One child of ``worker --processes N``: a whole worker on the metrics port + index."""
    settings = Settings(**{**fields, "metrics_port": fields["metrics_port"] + index})
    redact_standard_streams()  # a spawned child starts without the parent's redaction
    register_secrets(settings.secrets())
    logging.config.dictConfig(logging_config(settings.log_format, settings.log_level))
    assert settings.kafka_bootstrap and settings.redis_url
    run_worker(settings, settings.kafka_bootstrap, settings.redis_url)


@app.command()
@with_kafka_security
def generate(
    kafka_bootstrap: Bootstrap = None,
    topic_prefix: TopicPrefix = DEFAULTS.topic_prefix,
    accounts: Annotated[int, typer.Option(help="Accounts to simulate.")] = GENERATE.accounts,
    users_per_account: Annotated[
        int, typer.Option(help="Users per account.")
    ] = GENERATE.users_per_account,
    rate: Annotated[float, typer.Option(help=RATE_HELP)] = GENERATE.intensity,
    duration: Annotated[
        float, typer.Option(help="Seconds to run (0 = until stopped).")
    ] = GENERATE.duration,
    scenario: Annotated[str, typer.Option(help="normal or churn-spike.")] = GENERATE.scenario,
    malformed_share: Annotated[
        float, typer.Option(help="Share of deliberately invalid events.")
    ] = GENERATE.malformed_share,
    seed: Annotated[int, typer.Option(help="Random seed.")] = GENERATE.seed,
    history: History = "0",
    security: KafkaSecurity = NO_SECURITY,
) -> None:
    """Publish realistic events in real time (the embedded `run` does this for you)."""
    settings = _settings(**locals())
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
@with_kafka_security
def topics_create(
    kafka_bootstrap: Bootstrap = None,
    topic_prefix: TopicPrefix = DEFAULTS.topic_prefix,
    partitions: Annotated[
        int | None,
        typer.Option(envvar="CSPULSE_PARTITIONS", help="Partitions per topic (default 4)."),
    ] = None,
    replication_factor: Annotated[
        int | None,
        typer.Option(
            min=1, help="Copies of each partition (default 3, or the broker count if fewer)."
        ),
    ] = None,
    security: KafkaSecurity = NO_SECURITY,
) -> None:
    """Create the event and dead-letter topics (existing ones are left alone)."""
    settings = _settings(**locals())
    if not settings.kafka_bootstrap:
        fail("topics create needs CSPULSE_KAFKA_BOOTSTRAP (or --kafka-bootstrap).")
    assert settings.kafka_bootstrap
    ensure_topics(settings, settings.kafka_bootstrap, 30, replication_factor)
    typer.echo(f"topics ready: {', '.join(settings.all_topics)}")


def main() -> None:
    redact_standard_streams()
    fmt = os.environ.get("CSPULSE_LOG_FORMAT", DEFAULTS.log_format)
    level = os.environ.get("CSPULSE_LOG_LEVEL", DEFAULTS.log_level)
    logging.config.dictConfig(logging_config(fmt, level))
    app()
