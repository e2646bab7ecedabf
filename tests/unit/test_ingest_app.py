"""The ingest's routes without Kafka: answers, records and the per-source counters.

A stand-in sink keeps what would be produced (or fails as a Kafka outage
does); everything else is the real app: verification, mapping, validation,
dead letters and the metrics.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Sequence

import orjson

from streams import telemetry
from streams.config import Settings
from streams.exporter import Request
from streams.ingest import IngestApp, KafkaUnavailable, Record, Sink
from streams.webconfig import WebConfig
from tests.vendors import payload

SECRET = "segment-secret"


class Kept(Sink):
    """Keeps the records instead of producing them; ``down`` makes it an outage."""

    def __init__(self, settings: Settings) -> None:
        unused = asyncio.new_event_loop()  # deliver() below never reaches a loop
        unused.close()
        super().__init__(settings, "127.0.0.1:9", unused)
        self.kept: list[Record] = []
        self.down = False

    def deliver(self, records: Sequence[Record]) -> None:
        if self.down:
            raise KafkaUnavailable("broker gone")
        self.kept += records


def app() -> tuple[IngestApp, Kept]:
    config = Settings(topic_prefix="u.", segment_shared_secret=SECRET)
    sink = Kept(config)
    return IngestApp(config, sink, WebConfig()), sink


def segment_request(body: bytes, secret: str = SECRET) -> Request:
    signature = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return Request("POST", "/ingest/segment", {}, {"x-signature": signature}, body=body)


def count(source: str, outcome: str) -> float:
    value = telemetry.REGISTRY.get_sample_value(
        "cs_ingest_requests_total", {"source": source, "outcome": outcome}
    )
    return value or 0.0


def test_every_outcome_is_answered_and_counted_by_source() -> None:
    ingest, sink = app()
    track = payload("segment/track")
    track["context"]["groupId"] = "acme"
    body = orjson.dumps(track)
    before = {o: count("segment", o) for o in ("accepted", "unauthorized", "unavailable")}

    accepted = ingest.vendor("segment", segment_request(body))
    assert (accepted.status, orjson.loads(accepted.body)) == (200, {"accepted": 1})
    [record] = sink.kept
    assert (record.topic, record.key) == ("u.logins", b"acme")
    assert orjson.loads(record.value)["id"] == "segment:ajs-f8ca1e4de5024d9430b3928bd8ac6b96"

    forged = ingest.vendor("segment", segment_request(body, "other"))
    assert forged.status == 401 and len(sink.kept) == 1
    sink.down = True
    assert ingest.vendor("segment", segment_request(body)).status == 503

    assert count("segment", "accepted") - before["accepted"] == 1
    assert count("segment", "unauthorized") - before["unauthorized"] == 1
    assert count("segment", "unavailable") - before["unavailable"] == 1
    mapped = telemetry.REGISTRY.get_sample_value(
        "cs_ingest_mapping_seconds_count", {"source": "segment"}
    )
    assert mapped is not None and mapped >= 2  # the accepted and the unavailable request


def test_an_invalid_mapping_is_dead_lettered_with_its_source() -> None:
    ingest, sink = app()
    before = count("segment", "dead_lettered")
    no_user = orjson.dumps({"type": "track", "messageId": "m", "timestamp": "2026-01-01T00:00Z"})
    reply = ingest.vendor("segment", segment_request(no_user))
    assert (reply.status, orjson.loads(reply.body)) == (202, {"dead_lettered": "no_user"})
    letter = sink.kept[-1]
    assert (letter.topic, letter.key, letter.value) == ("u.deadletter", None, no_user)
    assert dict(letter.headers) == {
        "cs-ingest-source": b"segment",
        "cs-reason": b"no_user",
        "cs-detail": b"neither userId nor anonymousId",
    }
    assert count("segment", "dead_lettered") - before == 1


def test_sources_without_secrets_are_refused_with_the_setting_to_set() -> None:
    ingest, sink = app()
    request = Request("POST", "/ingest/stripe", {}, {}, body=b"{}")
    reply = ingest.vendor("stripe", request)
    assert (reply.status, orjson.loads(reply.body)) == (
        503,
        {"error": "ingest source stripe is off: set CSPULSE_STRIPE_WEBHOOK_SECRET"},
    )
    cloud = ingest.cloudevents(Request("POST", "/ingest/cloudevents", {}, {}, body=b"{}"))
    assert cloud.status == 503 and b"basic_auth_users" in cloud.body
    assert sink.kept == []
    assert ingest.status() == [
        "stripe: off (set CSPULSE_STRIPE_WEBHOOK_SECRET)",
        "zendesk: off (set CSPULSE_ZENDESK_WEBHOOK_SECRET)",
        "segment: on",
        "cloudevents: off (set basic_auth_users or require client certificates in "
        "CSPULSE_WEB_CONFIG_FILE)",
    ]
    assert ingest.routes["/ingest/segment"].methods == ("POST",)
    assert ingest.routes["/ingest/segment"].public
    assert not ingest.routes["/ingest/cloudevents"].public
