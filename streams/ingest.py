"""``cspulse ingest``: vendor webhooks and CloudEvents over HTTP, into the contract topics.

One endpoint per source. A request is verified the vendor's way
(:mod:`streams.ingest_verify`), mapped to contract events
(:mod:`schemas.sources`), validated exactly as the worker validates Kafka
input, and produced to the family's topic keyed by account; the answer is
2xx only once the broker acknowledged every record (``acks=all``), so a 2xx
means nothing can be lost, and anything else makes the vendor retry. A retry
carries the same vendor event id, hence the same contract ids, which the
worker deduplicates. A verified payload that cannot be mapped goes to the
dead-letter topic with its source and reason and is answered 2xx: the
vendor resending it would not help. A source without a secret is refused.

The HTTP server is the exporter's (:mod:`streams.exporter`): bounded bodies,
connections and request time; the web config's basic auth or client
certificates guard ``/ingest/cloudevents`` and ``/metrics``, while the vendor
endpoints are public and prove themselves by their signatures.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Histogram
from prometheus_client.exposition import generate_latest

from schemas import Event, Rejected, parse_event
from schemas.models import FAMILY_OF_TYPE
from schemas.sources import Ignored, Mapped, Unmappable
from schemas.sources import segment as segment_source
from schemas.sources import stripe as stripe_source
from schemas.sources import zendesk as zendesk_source
from streams import telemetry
from streams.app import DEAD_LETTER_MAX_BYTES
from streams.config import Settings
from streams.exporter import HttpServer, Request, Response, Route, serve
from streams.ingest_verify import (
    Unverified,
    Verifier,
    segment_verify,
    stripe_verifier,
    zendesk_verifier,
)
from streams.kafka_options import client_options
from streams.retry import RetryPolicy, on_types, retry_async
from streams.webconfig import WebConfig

log = logging.getLogger("cspulse.ingest")

STRIPE_RETRY_SECONDS: Final = 3 * 86400
"""Stripe retries an undelivered event for up to three days: a dedup horizon shorter
than that would count a late retry of an event already produced a second time."""
SECRET_SETTINGS: Final = {
    "stripe": "CSPULSE_STRIPE_WEBHOOK_SECRET",
    "zendesk": "CSPULSE_ZENDESK_WEBHOOK_SECRET",
    "segment": "CSPULSE_SEGMENT_SHARED_SECRET",
}
CLOUDEVENTS: Final = "cloudevents"
CLOUDEVENTS_OFF: Final = (
    "set basic_auth_users or require client certificates in CSPULSE_WEB_CONFIG_FILE"
)

REQUESTS = Counter(
    "cs_ingest_requests",
    "Ingest requests by source and outcome",
    ["source", "outcome"],
    registry=telemetry.REGISTRY,
)
IGNORED = Counter(
    "cs_ingest_ignored",
    "Verified vendor payloads of a type cspulse does not map",
    ["source", "kind"],
    registry=telemetry.REGISTRY,
)
MAPPING_SECONDS = Histogram(
    "cs_ingest_mapping_seconds",
    "Time to map and validate one request's payload",
    ["source"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1),
    registry=telemetry.REGISTRY,
)
OUTCOMES: Final = (
    "accepted",
    "ignored",
    "dead_lettered",
    "unauthorized",
    "bad_request",
    "refused",
    "unavailable",
)


class KafkaUnavailable(Exception):
    """The records were not acknowledged in time: the caller answers 503."""


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    time: float = 0.0
    """The event's time (0 for a dead letter): a backfill is produced in time order."""


class Sink:
    """The producer: idempotent, ``acks=all``, (re)connected in the background; records
    are handed over from the HTTP handler threads and awaited until acknowledged."""

    def __init__(self, settings: Settings, bootstrap: str, loop: asyncio.AbstractEventLoop):
        self.settings, self.bootstrap, self.loop = settings, bootstrap, loop
        self.producer: AIOKafkaProducer | None = None

    async def run(self, stopping: asyncio.Event) -> None:
        """Connect (retrying while Kafka is down), then hold the producer until ``stopping``."""
        policy = RetryPolicy(initial=0.5, ceiling=5.0)
        producer = await retry_async(self._start, policy, on_types(Exception), "Kafka")
        self.producer = producer
        try:
            await stopping.wait()
        finally:
            self.producer = None
            await producer.stop()

    async def _start(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            client_id=f"{self.settings.app_id}-ingest",
            acks="all",
            # no bootstrap configured: the embedded broker, which refuses InitProducerId
            enable_idempotence=self.settings.ingest_idempotent
            and bool(self.settings.kafka_bootstrap),
            linger_ms=2,
            max_request_size=DEAD_LETTER_MAX_BYTES + 65536,
            request_timeout_ms=int(self.settings.ingest_ack_timeout * 1000),
            **client_options(self.settings, self.bootstrap),
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    def deliver(self, records: Sequence[Record]) -> None:
        """Produce ``records`` and block until Kafka acknowledged all of them."""
        if self.producer is None:
            raise KafkaUnavailable("not connected to Kafka yet")
        timeout = self.settings.ingest_ack_timeout
        done = asyncio.run_coroutine_threadsafe(self._send(self.producer, records), self.loop)
        try:
            done.result(timeout + 1)
        except (TimeoutError, KafkaError, OSError) as exc:
            done.cancel()
            raise KafkaUnavailable(f"{type(exc).__name__}: {exc}") from None

    async def _send(self, producer: AIOKafkaProducer, records: Sequence[Record]) -> None:
        async def send_all() -> None:
            acks = [
                await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
                for r in records
            ]
            await asyncio.gather(*acks)

        await asyncio.wait_for(send_all(), self.settings.ingest_ack_timeout)


Verdict = list[Record] | Ignored | Unmappable
"""What a request comes to: records to produce, a type not mapped, or a dead letter."""


@dataclass(frozen=True)
class Vendor:
    """A signed source: how it proves itself and how its payloads map."""

    name: str
    verify: Verifier
    mapping: Callable[[bytes], Mapped]


def vendors(settings: Settings) -> dict[str, Vendor]:
    config = stripe_source.StripeConfig(settings.stripe_account_key, settings.stripe_plan_from)
    memory = segment_source.SegmentMemory(idle_timeout=settings.idle_timeout)
    lock = threading.Lock()  # handlers run on several threads; the memory is one

    def segment(body: bytes) -> Mapped:
        with lock:
            return segment_source.map_message(body, memory)

    found = [
        Vendor(
            "stripe",
            stripe_verifier(settings.stripe_tolerance),
            lambda body: stripe_source.map_event(body, config),
        ),
        Vendor("zendesk", zendesk_verifier(settings.zendesk_tolerance), zendesk_source.map_event),
        Vendor("segment", segment_verify, segment),
    ]
    return {v.name: v for v in found}


def horizon_problem(settings: Settings) -> str | None:
    """Why the dedup horizon is too short for a configured source, or None."""
    if settings.source_secrets()["stripe"] and settings.dedup_horizon < STRIPE_RETRY_SECONDS:
        return (
            f"Stripe retries a webhook for up to 3 days: set CSPULSE_DEDUP_HORIZON to at "
            f"least {STRIPE_RETRY_SECONDS} (here and on the workers; it is "
            f"{settings.dedup_horizon}) so a late retry is not counted twice"
        )
    return None


def protects_cloudevents(web: WebConfig) -> bool:
    """CloudEvents carry no signature: they need basic auth users or required client certs."""
    return bool(web.users) or (web.tls is not None and web.tls.verify_mode == ssl.CERT_REQUIRED)


class IngestApp:
    """The routes of the ingest port."""

    def __init__(self, settings: Settings, sink: Sink, web: WebConfig) -> None:
        self.settings, self.sink = settings, sink
        self.secrets = settings.source_secrets()
        self.vendors = vendors(settings)
        self.cloudevents_on = protects_cloudevents(web)
        self.routes: dict[str, Route] = {
            f"/ingest/{name}": Route(self._vendor_route(name), public=True, methods=("POST",))
            for name in self.vendors
        }
        self.routes["/ingest/cloudevents"] = Route(self.cloudevents, methods=("POST",))
        self.routes["/healthz"] = Route(lambda _: Response(200, b"ok\n"), public=True)
        self.routes["/readyz"] = Route(self.readiness, public=True)
        self.routes["/metrics"] = Route(self.metrics)
        for source in [*self.vendors, CLOUDEVENTS]:
            for outcome in OUTCOMES:
                REQUESTS.labels(source, outcome)

    def route(self, path: str) -> Route | None:
        """Ingest paths are exact."""
        return self.routes.get(path)

    def status(self) -> list[str]:
        """One line per source: on, or what turns it on."""
        lines = [
            f"{name}: on" if self.secrets[name] else f"{name}: off (set {SECRET_SETTINGS[name]})"
            for name in self.vendors
        ]
        lines.append(
            f"{CLOUDEVENTS}: " + ("on" if self.cloudevents_on else f"off ({CLOUDEVENTS_OFF})")
        )
        return lines

    def _vendor_route(self, name: str) -> Callable[[Request], Response]:
        return lambda request: self.vendor(name, request)

    def vendor(self, name: str, request: Request) -> Response:
        """Verify, map, validate, produce; the status tells the vendor whether to retry."""
        secret = self.secrets[name]
        if secret is None:
            line = f"ingest source {name} is off: set {SECRET_SETTINGS[name]}"
            return _answer(name, "refused", 503, {"error": line})
        try:
            self.vendors[name].verify(request.body, request.headers, secret, time.time())
        except Unverified as exc:
            return _answer(name, "unauthorized", 401, {"error": str(exc)})
        started = time.perf_counter()
        verdict = verdict_of(self.settings, self.vendors[name].mapping(request.body))
        MAPPING_SECONDS.labels(name).observe(time.perf_counter() - started)
        return self._deliver(name, request.body, verdict)

    def cloudevents(self, request: Request) -> Response:
        """A contract event over HTTP, structured or binary mode, validated like Kafka input."""
        if not self.cloudevents_on:
            line = f"ingest source cloudevents is off: {CLOUDEVENTS_OFF}"
            return _answer(CLOUDEVENTS, "refused", 503, {"error": line})
        started = time.perf_counter()
        try:
            raw = structured(request.headers, request.body)
        except ValueError as exc:
            return _answer(CLOUDEVENTS, "bad_request", 400, {"error": str(exc)})
        verdict = validated(self.settings, [raw])
        MAPPING_SECONDS.labels(CLOUDEVENTS).observe(time.perf_counter() - started)
        return self._deliver(CLOUDEVENTS, request.body, verdict)

    def _deliver(self, source: str, body: bytes, verdict: Verdict) -> Response:
        if isinstance(verdict, Ignored):
            IGNORED.labels(source, verdict.kind).inc()
            return _answer(source, "ignored", 200, {"ignored": verdict.kind})
        reply: dict[str, object]
        if isinstance(verdict, Unmappable):
            records = [dead_letter(self.settings, source, body, verdict)]
            outcome, reply = "dead_lettered", {"dead_lettered": verdict.reason}
        else:
            records = verdict
            outcome, reply = "accepted", {"accepted": len(records)}
        try:
            self.sink.deliver(records)
        except KafkaUnavailable as exc:
            log.warning("ingest %s: Kafka did not acknowledge (%s); answered 503", source, exc)
            return _answer(source, "unavailable", 503, {"error": "Kafka unavailable; retry"})
        return _answer(source, outcome, 200 if outcome == "accepted" else 202, reply)

    def readiness(self, _: Request) -> Response:
        if self.sink.producer is not None:
            return Response(200, b"ready\n")
        return Response(503, b"not connected to Kafka yet\n")

    def metrics(self, _: Request) -> Response:
        return Response(200, generate_latest(telemetry.REGISTRY), "text/plain; version=0.0.4")


def verdict_of(settings: Settings, mapped: Mapped) -> Verdict:
    """What a mapped payload comes to: its drafts validated, or why not."""
    if not isinstance(mapped, list):
        return mapped
    return validated(settings, [draft.encode() for draft in mapped])


def validated(settings: Settings, values: list[bytes]) -> list[Record] | Unmappable:
    """Each contract event checked by the worker's own validator, or why one fails."""
    records = []
    for value in values:
        event = parse_event(value, now=time.time(), reporting_currency=settings.currency)
        if isinstance(event, Rejected):
            return Unmappable(event.reason, event.detail)
        records.append(record_of(settings, event, value))
    return records


def record_of(settings: Settings, event: Event, value: bytes) -> Record:
    """An event on its family's topic, keyed by its account."""
    topic = settings.topic(FAMILY_OF_TYPE[event.type])
    return Record(topic, event.account_id.encode(), value, time=event.time)


def dead_letter(settings: Settings, source: str, body: bytes, why: Unmappable) -> Record:
    """A verified payload that maps to nothing valid: its bytes, its source and the reason."""
    headers = [
        ("cs-ingest-source", source.encode()),
        ("cs-reason", why.reason.encode()),
        ("cs-detail", why.detail.encode()[:500]),
    ]
    if len(body) > DEAD_LETTER_MAX_BYTES:
        headers.append(("cs-truncated-from-bytes", str(len(body)).encode()))
        body = body[:65536]
    return Record(settings.deadletter_topic, None, body, tuple(headers))


def structured(headers: dict[str, str], body: bytes) -> bytes:
    """The contract's structured-mode JSON of a CloudEvent in either HTTP mode (the SDK's
    reading); a structured body is kept byte for byte. ValueError if it is none."""
    from cloudevents.core.bindings import http

    binary = any(name.startswith("ce-") for name in headers)
    if not binary:
        return body  # parse_event judges it exactly as a Kafka message
    try:
        event = http.from_http_event(http.HTTPMessage(headers=headers, body=body))
    except Exception as exc:  # the SDK raises several types for one meaning
        raise ValueError(f"not a binary-mode CloudEvent: {exc}") from None
    body_out: bytes = http.to_structured_event(event).body
    return body_out


def _answer(source: str, outcome: str, status: int, body: Mapping[str, object]) -> Response:
    REQUESTS.labels(source, outcome).inc()
    return Response(status, orjson.dumps(body) + b"\n", "application/json")


def bind(settings: Settings, bootstrap: str, web: WebConfig) -> tuple[HttpServer, Sink]:
    """Open the ingest port (OSError at once if it is taken); the producer connects later."""
    sink = Sink(settings, bootstrap, asyncio.get_running_loop())
    app = IngestApp(settings, sink, web)
    server = serve(
        app,
        settings.ingest_host,
        settings.ingest_port,
        web,
        max_connections=settings.web_max_connections,
        request_timeout=settings.web_request_timeout,
        max_body=settings.ingest_max_body,
    )
    log.info("ingest on %s:%d; %s", settings.ingest_host, server.port, "; ".join(app.status()))
    return server, sink


async def hold(server: HttpServer, sink: Sink, stopping: asyncio.Event) -> None:
    """Keep the producer connected and the port served until ``stopping``."""
    try:
        await sink.run(stopping)
    finally:
        server.shutdown()
