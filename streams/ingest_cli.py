"""``cspulse ingest``, and the ingest port ``cspulse run`` opens beside the worker."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from streams.config import DEFAULTS, Settings
from streams.ingest import bind, hold, horizon_problem
from streams.ingest_import import Tally, plan, produce, read_payloads
from streams.options import (
    NO_SECURITY,
    Bootstrap,
    KafkaSecurity,
    TopicPrefix,
    WebConfigFile,
    setting,
    with_kafka_security,
)
from streams.webconfig import WebConfig

IngestPort = Annotated[int, setting("ingest_port", "Port of the /ingest/... endpoints.")]
IngestHost = Annotated[str, setting("ingest_host", "Address the ingest port binds to.")]


@dataclass
class Opened:
    """The ingest port, open until :meth:`close` (a no-op when it was not opened)."""

    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def close(self) -> None:
        self.stopping.set()
        if self.task is not None:
            await self.task


def open_ingest(
    settings: Settings, bootstrap: str, enabled: bool = True, beside_worker: bool = False
) -> Opened:
    """Open the ingest port now (or exit with one clear line); serve it until closed.

    Beside ``cspulse run``'s worker the port is an extra: if it is taken, a warning
    says so and the rest runs, rather than a demo failing over an optional port."""
    from streams.startup import fail

    opened = Opened()
    if not enabled:
        return opened
    problem = horizon_problem(settings)
    if problem:
        fail(problem)
    try:
        web = WebConfig.load(settings.web_config_file)
    except ValueError as exc:
        fail(str(exc))
    try:
        server, sink = bind(settings, bootstrap, web)
    except OSError as exc:
        where = f"{settings.ingest_host}:{settings.ingest_port}"
        line = (
            f"cannot serve the ingest port on {where} ({exc.strerror or exc}). "
            "Set CSPULSE_INGEST_PORT or CSPULSE_INGEST_HOST."
        )
        if not beside_worker:
            fail(line)
        typer.secho(f"cspulse: {line} Running without it.", err=True, fg=typer.colors.YELLOW)
        return opened
    opened.task = asyncio.create_task(hold(server, sink, opened.stopping))
    return opened


@with_kafka_security
def ingest(
    kafka_bootstrap: Bootstrap = None,
    topic_prefix: TopicPrefix = DEFAULTS.topic_prefix,
    ingest_port: IngestPort = DEFAULTS.ingest_port,
    ingest_host: IngestHost = DEFAULTS.ingest_host,
    web_config_file: WebConfigFile = None,
    security: KafkaSecurity = NO_SECURITY,
) -> None:
    """Receive Stripe, Zendesk and Segment webhooks and CloudEvents over HTTP, verify them,
    and produce contract events to Kafka (2xx once the broker has them)."""
    from streams.cli import _settings
    from streams.startup import fail

    settings = _settings(**locals())
    if not settings.kafka_bootstrap:
        fail("ingest needs CSPULSE_KAFKA_BOOTSTRAP (or --kafka-bootstrap host:port).")
    assert settings.kafka_bootstrap

    async def main(bootstrap: str) -> None:
        opened = open_ingest(settings, bootstrap)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, opened.stopping.set)
        assert opened.task is not None
        await opened.task

    asyncio.run(main(settings.kafka_bootstrap))


import_app = typer.Typer(
    help="Backfill from a vendor's export, mapped exactly as its webhooks.", no_args_is_help=True
)
ExportFile = Annotated[
    Path,
    typer.Argument(
        exists=True,
        dir_okay=False,
        help="A JSON array of events, or one event or list page (Stripe's GET /v1/events) "
        "per line.",
    ),
]


def _import(source: str, path: Path, settings: Settings) -> None:
    """Map every payload of ``path``, then produce them in time order, telling the progress."""
    from streams.startup import fail

    if not settings.kafka_bootstrap:
        fail(f"import {source} needs CSPULSE_KAFKA_BOOTSTRAP (or --kafka-bootstrap host:port).")
    assert settings.kafka_bootstrap
    try:
        payloads = read_payloads(path)
    except (OSError, ValueError) as exc:
        fail(str(exc))
    tally = Tally()
    records = plan(settings, source, payloads, tally)
    typer.echo(f"{path}: {len(payloads)} {source} payload(s): {tally.line()}", err=True)

    def progress(done: int, total: int) -> None:
        typer.echo(f"import {source}: {done}/{total} record(s) acknowledged", err=True)

    asyncio.run(produce(settings, settings.kafka_bootstrap, records, progress))
    typer.echo(f"imported {path}: {tally.line()}")


@import_app.command("stripe")
@with_kafka_security
def import_stripe(
    file: ExportFile,
    kafka_bootstrap: Bootstrap = None,
    topic_prefix: TopicPrefix = DEFAULTS.topic_prefix,
    security: KafkaSecurity = NO_SECURITY,
) -> None:
    """Backfill Stripe events (subscriptions, invoices) from an export of GET /v1/events."""
    from streams.cli import _settings

    _import("stripe", file, _settings(**locals()))


@import_app.command("zendesk")
@with_kafka_security
def import_zendesk(
    file: ExportFile,
    kafka_bootstrap: Bootstrap = None,
    topic_prefix: TopicPrefix = DEFAULTS.topic_prefix,
    security: KafkaSecurity = NO_SECURITY,
) -> None:
    """Backfill Zendesk ticket events (the webhooks' zen:event-type:ticket.* payloads)."""
    from streams.cli import _settings

    _import("zendesk", file, _settings(**locals()))


def register(app: typer.Typer) -> None:
    """``cspulse ingest`` and ``cspulse import``."""
    app.command("ingest")(ingest)
    app.add_typer(import_app, name="import")
