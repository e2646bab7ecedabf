"""``cspulse ingest`` through its real HTTP port, the real broker, a real worker and Redis.

The "done when" case of the issue: a signed Stripe
``customer.subscription.created`` for an annual price of $1,200 with
quantity 2 moves ``cs_mrr{plan="all"}`` by exactly 200 ($2,400 a year / 12);
the same event delivered again moves nothing; a wrong signature is refused
and moves nothing. Then the refusals of every source: wrong signature, old
timestamp, oversized body, malformed JSON, a type not mapped, Kafka down.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import orjson
import pytest
import stripe

from streams.config import Settings
from streams.demo.embedded import free_port, start_broker
from streams.ingest_verify import sign_segment, sign_zendesk
from streams.topics import create_topics
from tests.harness import (
    Stack,
    WorkerProcess,
    applied_offsets,
    consume_all,
    scrape,
)
from tests.integration.conftest import fresh_names
from tests.vendors import payload, priced, stripe_event, subscription

SECRETS = {
    "CSPULSE_STRIPE_WEBHOOK_SECRET": "whsec_test_cspulse",
    "CSPULSE_ZENDESK_WEBHOOK_SECRET": "zendesk-signing-secret",
    "CSPULSE_SEGMENT_SHARED_SECRET": "segment-shared-secret",
}
STRIPE = SECRETS["CSPULSE_STRIPE_WEBHOOK_SECRET"]
ZENDESK = SECRETS["CSPULSE_ZENDESK_WEBHOOK_SECRET"]
SEGMENT = SECRETS["CSPULSE_SEGMENT_SHARED_SECRET"]
HORIZON = {"CSPULSE_DEDUP_HORIZON": "259200"}  # Stripe retries for 3 days
MAX_BODY = 65_536
MRR_ALL = ("cs_mrr", (("currency", "USD"), ("plan", "all")))
PASSWORD = "ingest-password"


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


def post(port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> Reply:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers=headers or {}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return Reply(resp.status, orjson.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        text = exc.read()
        return Reply(exc.code, orjson.loads(text) if text.startswith(b"{") else {"text": text})


def stripe_headers(body: bytes, secret: str = STRIPE, at: int | None = None) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, at)
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


def zendesk_headers(body: bytes, secret: str = ZENDESK, at: float | None = None) -> dict[str, str]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at if at is not None else time.time()))
    return {
        "X-Zendesk-Webhook-Signature": sign_zendesk(body, secret, stamp),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }


def segment_headers(body: bytes, secret: str = SEGMENT) -> dict[str, str]:
    return {"X-Signature": sign_segment(body, secret)}


def start_ingest(stack: Stack, prefix: str, **extra: str) -> WorkerProcess:
    port = free_port()
    env = stack.worker_env(prefix, "unused", 0)
    env.update(
        CSPULSE_INGEST_PORT=str(port),
        CSPULSE_INGEST_HOST="127.0.0.1",
        CSPULSE_INGEST_IDEMPOTENT="false",  # the embedded broker refuses InitProducerId
        CSPULSE_INGEST_MAX_BODY=str(MAX_BODY),
        CSPULSE_INGEST_ACK_TIMEOUT="3",
        **SECRETS,
        **HORIZON,
    )
    env.update(extra)
    process = WorkerProcess(env, port, stack.workdir / f"ingest-{port}.log", command="ingest")
    stack.workers.append(process)
    process.start()
    wait_ready(process)
    return process


def wait_ready(process: WorkerProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{process.port}/readyz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"ingest not connected to Kafka in {timeout}s:\n{process.tail()}")


def annual_team(event_id: str) -> bytes:
    """$1,200 a year, quantity 2: $2,400 / 12 = $200 of MRR."""
    sub = priced(subscription(metadata={"account_id": "acme"}), 120_000, "year", 2)
    return stripe_event(
        "customer.subscription.created", sub, created=int(time.time()) - 60, event_id=event_id
    )


def wait_changed(
    redis: Any, partitions: list[tuple[str, int]], before: dict[tuple[str, int], int]
) -> dict[tuple[str, int], int]:
    """Until the worker has applied more of ``partitions`` than ``before``."""
    deadline = time.monotonic() + 30
    while (now := applied_offsets(redis, partitions)) == before:
        assert time.monotonic() < deadline, "the worker applied nothing"
        time.sleep(0.1)
    return now


def mrr(port: int) -> float:
    return scrape(port).get(MRR_ALL, 0.0)


def test_signed_stripe_annual_subscription_moves_mrr_by_200_once(stack: Stack) -> None:
    prefix, group = fresh_names(stack)
    worker = stack.new_worker(prefix, group, **HORIZON).start()
    ingest = start_ingest(stack, prefix)
    billing = [(prefix + "billing", 0), (prefix + "billing", 1)]
    redis = stack.redis()
    before = mrr(worker.port)
    body = annual_team("evt_annual_team_x2")

    offsets = applied_offsets(redis, billing)
    reply = post(ingest.port, "/ingest/stripe", body, stripe_headers(body))
    assert (reply.status, reply.body) == (200, {"accepted": 1})
    offsets = wait_changed(redis, billing, offsets)
    assert mrr(worker.port) - before == 200

    again = post(ingest.port, "/ingest/stripe", body, stripe_headers(body))  # Stripe's retry
    assert again.status == 200
    wait_changed(redis, billing, offsets)
    assert mrr(worker.port) - before == 200
    duplicates = scrape(worker.port)[
        ("cs_events_duplicate_total", (("topic", prefix + "billing"),))
    ]
    assert duplicates == 1

    forged = post(ingest.port, "/ingest/stripe", body, stripe_headers(body, "whsec_wrong"))
    assert forged.status == 401
    assert "Stripe-Signature" in forged.body["error"]
    assert len(consume_all(stack.bootstrap, prefix + "billing", 3, timeout=5)) == 2
    assert mrr(worker.port) - before == 200
    worker.stop()
    ingest.stop()


@pytest.fixture(scope="module")
def ingest(stack: Stack) -> Iterator[tuple[str, WorkerProcess]]:
    prefix, _ = fresh_names(stack)
    process = start_ingest(stack, prefix)
    yield prefix, process
    process.stop()


def test_wrong_signatures_are_refused(ingest: tuple[str, WorkerProcess]) -> None:
    _, process = ingest
    stripe_body = annual_team("evt_forged")
    zendesk_body = orjson.dumps(payload("zendesk/ticket_created"))
    segment_body = orjson.dumps(payload("segment/track"))
    cases = [
        ("stripe", stripe_body, stripe_headers(stripe_body, "whsec_other")),
        ("stripe", stripe_body, {}),
        ("zendesk", zendesk_body, zendesk_headers(zendesk_body, "other")),
        ("zendesk", zendesk_body + b" ", zendesk_headers(zendesk_body)),
        ("segment", segment_body, segment_headers(segment_body, "other")),
        ("segment", segment_body, {}),
    ]
    for source, body, headers in cases:
        reply = post(process.port, f"/ingest/{source}", body, headers)
        assert reply.status == 401, (source, reply)


def test_old_signature_timestamps_are_refused(ingest: tuple[str, WorkerProcess]) -> None:
    _, process = ingest
    body = annual_team("evt_old")
    old = int(time.time()) - 301  # the tolerance is 300 s
    reply = post(process.port, "/ingest/stripe", body, stripe_headers(body, at=old))
    assert reply.status == 401 and "tolerance" in reply.body["error"]
    zendesk_body = orjson.dumps(payload("zendesk/ticket_created"))
    reply = post(
        process.port, "/ingest/zendesk", zendesk_body, zendesk_headers(zendesk_body, at=old)
    )
    assert reply.status == 401 and "300 s" in reply.body["error"]


def test_oversized_bodies_are_refused_unread(ingest: tuple[str, WorkerProcess]) -> None:
    _, process = ingest
    big = b'{"pad": "' + b"x" * MAX_BODY + b'"}'
    for source, headers in [
        ("stripe", stripe_headers(big)),
        ("zendesk", zendesk_headers(big)),
        ("segment", segment_headers(big)),
    ]:
        reply = post(process.port, f"/ingest/{source}", big, headers)
        assert reply.status == 413, (source, reply)


def test_verified_but_unmappable_goes_to_the_dead_letters(
    stack: Stack, ingest: tuple[str, WorkerProcess]
) -> None:
    prefix, process = ingest
    malformed = b'{"id": "evt_1", "type": "customer.subscription.created", '
    zendesk_orphan = payload("zendesk/ticket_created")
    zendesk_orphan["detail"]["organization_id"] = None
    orphan = orjson.dumps(zendesk_orphan)
    cases = [
        ("stripe", malformed, stripe_headers(malformed), "bad_payload"),
        ("zendesk", malformed, zendesk_headers(malformed), "bad_payload"),
        ("segment", malformed, segment_headers(malformed), "bad_payload"),
        ("zendesk", orphan, zendesk_headers(orphan), "no_organization"),
    ]
    for source, body, headers, reason in cases:
        reply = post(process.port, f"/ingest/{source}", body, headers)
        assert (reply.status, reply.body) == (202, {"dead_lettered": reason}), source
    letters = consume_all(stack.bootstrap, prefix + "deadletter", len(cases), timeout=15)
    seen = [
        (
            dict(r.headers)["cs-ingest-source"].decode(),
            dict(r.headers)["cs-reason"].decode(),
            r.value,
        )
        for r in letters
    ]
    assert sorted(seen) == sorted((s, reason, body) for s, body, _, reason in cases)


def test_types_not_mapped_are_accepted_and_ignored(ingest: tuple[str, WorkerProcess]) -> None:
    _, process = ingest
    plan = orjson.dumps(payload("stripe/event"))  # plan.created
    priority = orjson.dumps(
        payload("zendesk/ticket_created", type="zen:event-type:ticket.priority_changed")
    )
    identify = orjson.dumps(
        {
            "type": "identify",
            "messageId": "m-1",
            "userId": "u1",
            "timestamp": "2026-01-01T00:00:00Z",
        }
    )
    for source, body, headers, kind in [
        ("stripe", plan, stripe_headers(plan), "plan.created"),
        ("zendesk", priority, zendesk_headers(priority), "ticket.priority_changed"),
        ("segment", identify, segment_headers(identify), "identify"),
    ]:
        reply = post(process.port, f"/ingest/{source}", body, headers)
        assert (reply.status, reply.body) == (200, {"ignored": kind}), source
    ignored = ("cs_ingest_ignored_total", (("kind", "plan.created"), ("source", "stripe")))
    assert scrape(process.port)[ignored] == 1


def test_each_source_maps_to_its_topic_keyed_by_account(
    stack: Stack, ingest: tuple[str, WorkerProcess]
) -> None:
    prefix, process = ingest
    ticket = orjson.dumps(payload("zendesk/ticket_created"))
    reply = post(process.port, "/ingest/zendesk", ticket, zendesk_headers(ticket))
    assert (reply.status, reply.body) == (200, {"accepted": 1})
    track = payload("segment/track")
    track["context"]["groupId"] = "acme"
    body = orjson.dumps(track)
    assert post(process.port, "/ingest/segment", body, segment_headers(body)).status == 200
    [opened] = consume_all(stack.bootstrap, prefix + "tickets", 1, timeout=15)
    assert opened.key == b"10002"
    assert orjson.loads(opened.value)["id"] == "zendesk:01HNXXXX-CTEXAMPLE"
    [session] = consume_all(stack.bootstrap, prefix + "logins", 1, timeout=15)
    assert session.key == b"acme"
    assert orjson.loads(session.value)["type"] == "session.started"


def test_cloudevents_need_the_web_configs_auth(stack: Stack) -> None:
    prefix, _ = fresh_names(stack)
    open_ingest = start_ingest(stack, prefix)
    event = cloudevent("ce-1")
    reply = post(open_ingest.port, "/ingest/cloudevents", event, STRUCTURED)
    assert reply.status == 503 and "basic_auth_users" in reply.body["error"]
    open_ingest.stop()

    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    web = stack.workdir / f"web-{prefix}yml"
    web.write_text(f"basic_auth_users:\n  producer: {hashed}\n")
    guarded = start_ingest(stack, prefix, CSPULSE_WEB_CONFIG_FILE=str(web))
    auth = {"Authorization": basic("producer", PASSWORD)}
    assert post(guarded.port, "/ingest/cloudevents", event, STRUCTURED).status == 401
    wrong = {"Authorization": basic("producer", "nope")}
    assert post(guarded.port, "/ingest/cloudevents", event, {**STRUCTURED, **wrong}).status == 401
    reply = post(guarded.port, "/ingest/cloudevents", event, {**STRUCTURED, **auth})
    assert (reply.status, reply.body) == (200, {"accepted": 1})
    binary = {
        "ce-specversion": "1.0",
        "ce-id": "ce-2",
        "ce-source": "helpdesk",
        "ce-type": "ticket.opened",
        "ce-time": "2026-01-01T00:00:00Z",
        "Content-Type": "application/json",
    }
    data = orjson.dumps({"account_id": "acme", "ticket_id": "T-2", "channel": "chat"})
    reply = post(guarded.port, "/ingest/cloudevents", data, {**binary, **auth})
    assert (reply.status, reply.body) == (200, {"accepted": 1})
    euro = cloudevent(
        "ce-3",
        type="invoice.paid",
        data={"account_id": "acme", "invoice_id": "i", "amount_cents": 100, "currency": "EUR"},
    )
    reply = post(guarded.port, "/ingest/cloudevents", euro, {**STRUCTURED, **auth})
    assert (reply.status, reply.body) == (202, {"dead_lettered": "currency"})
    tickets = consume_all(stack.bootstrap, prefix + "tickets", 2, timeout=15)
    assert [orjson.loads(r.value)["id"] for r in tickets] == ["ce-1", "ce-2"]
    assert orjson.loads(tickets[1].value)["data"]["channel"] == "chat"
    guarded.stop()


STRUCTURED = {"Content-Type": "application/cloudevents+json"}


def cloudevent(event_id: str, **changes: Any) -> bytes:
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": "helpdesk",
        "type": "ticket.opened",
        "time": "2026-01-01T00:00:00Z",
        "data": {"account_id": "acme", "ticket_id": "T-1"},
    }
    event.update(changes)
    return orjson.dumps(event)


def basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_kafka_down_answers_503_and_unconfigured_sources_are_refused(stack: Stack) -> None:
    prefix, _ = fresh_names(stack)
    port = free_port()
    env = stack.worker_env(prefix, "unused", 0)
    env.update(
        CSPULSE_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",  # nothing listens there
        CSPULSE_INGEST_PORT=str(port),
        CSPULSE_INGEST_HOST="127.0.0.1",
        CSPULSE_STRIPE_WEBHOOK_SECRET=STRIPE,
        **HORIZON,
    )
    process = WorkerProcess(env, port, stack.workdir / f"ingest-{port}.log", command="ingest")
    stack.workers.append(process)
    process.start()
    body = annual_team("evt_down")
    reply = post(port, "/ingest/stripe", body, stripe_headers(body))
    assert reply.status == 503
    zendesk_body = orjson.dumps(payload("zendesk/ticket_created"))
    reply = post(port, "/ingest/zendesk", zendesk_body, zendesk_headers(zendesk_body))
    assert reply.status == 503
    assert reply.body == {
        "error": "ingest source zendesk is off: set CSPULSE_ZENDESK_WEBHOOK_SECRET"
    }
    process.stop()


def cspulse(stack: Stack, prefix: str, *args: str, **extra: str) -> str:
    """The command line against the test broker; its stdout (it must succeed)."""
    env = stack.worker_env(prefix, "unused", 0, CSPULSE_INGEST_IDEMPOTENT="false", **extra)
    done = subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def test_import_stripe_backfills_in_event_time_order(stack: Stack, tmp_path: Path) -> None:
    prefix, _ = fresh_names(stack)
    sub = priced(subscription(metadata={"account_id": "acme"}), 120_000, "year", 2)
    paid = payload("stripe/invoice", amount_paid=1000, metadata={})
    paid["parent"]["subscription_details"]["metadata"] = {"account_id": "acme"}
    now = int(time.time())
    started = stripe_event("customer.subscription.created", sub, created=now - 20, event_id="evt_a")
    invoiced = stripe_event("invoice.paid", paid, created=now - 10, event_id="evt_b")
    newest_first = [orjson.loads(invoiced), orjson.loads(started)]  # as GET /v1/events lists
    page = {"object": "list", "has_more": False, "data": newest_first}
    export = tmp_path / "stripe.jsonl"
    export.write_bytes(orjson.dumps(page) + b"\n")
    out = cspulse(stack, prefix, "import", "stripe", str(export))
    assert "2 event(s) produced, 0 ignored (types not mapped), 0 dead-lettered" in out
    records = consume_all(stack.bootstrap, prefix + "billing", 2, timeout=15)
    assert [orjson.loads(r.value)["id"] for r in records] == ["stripe:evt_a", "stripe:evt_b"]
    assert {r.key for r in records} == {b"acme"}


def test_deadletter_replay_maps_ingest_letters_again(stack: Stack) -> None:
    prefix, _ = fresh_names(stack)
    process = start_ingest(stack, prefix)
    sub = subscription(currency="eur")
    sub["items"]["data"][0]["price"]["currency"] = "eur"
    body = stripe_event("customer.subscription.created", sub, event_id="evt_euro")
    reply = post(process.port, "/ingest/stripe", body, stripe_headers(body))
    assert (reply.status, reply.body) == (202, {"dead_lettered": "currency"})
    process.stop()
    listed = cspulse(stack, prefix, "deadletter", "list")
    assert "ingest:stripe" in listed and "currency" in listed
    out = cspulse(stack, prefix, "deadletter", "replay", CSPULSE_CURRENCY="EUR")
    assert "mapped 1 ingest letter(s) again: 1 event(s) produced" in out
    assert "repeated" not in out and "published nothing (0 letter(s) matched)" in out
    [record] = consume_all(stack.bootstrap, prefix + "billing", 1, timeout=15)
    event = orjson.loads(record.value)
    assert (event["id"], event["data"]["currency"]) == ("stripe:evt_euro", "EUR")


def test_a_broker_lost_after_start_answers_503(stack: Stack) -> None:
    prefix, _ = fresh_names(stack)
    workdir = stack.workdir / f"own-broker-{prefix}"
    workdir.mkdir()
    broker = start_broker(workdir)
    bootstrap = f"127.0.0.1:{broker.port}"
    try:
        asyncio.run(create_topics(Settings(topic_prefix=prefix, partitions=1), bootstrap))
        process = start_ingest(stack, prefix, CSPULSE_KAFKA_BOOTSTRAP=bootstrap)
        first = annual_team("evt_before_the_outage")
        assert post(process.port, "/ingest/stripe", first, stripe_headers(first)).status == 200
        broker.kill()
        body = annual_team("evt_during_the_outage")
        started = time.monotonic()
        reply = post(process.port, "/ingest/stripe", body, stripe_headers(body))
        assert (reply.status, reply.body) == (503, {"error": "Kafka unavailable; retry"})
        assert time.monotonic() - started < 3 + 2  # CSPULSE_INGEST_ACK_TIMEOUT, then the answer
        process.stop()
    finally:
        broker.kill()
