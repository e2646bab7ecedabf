"""Backfill files: how they are read, and the order and verdicts of what they map to."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.config import Settings
from streams.ingest_import import Tally, plan, read_payloads
from tests.vendors import payload, priced, stripe_event, subscription

SETTINGS = Settings(topic_prefix="t.", currency="USD")


def created(event_id: str, at: int) -> bytes:
    sub = priced(subscription(metadata={"account_id": "acme"}), 120_000, "year", 2)
    return stripe_event("customer.subscription.created", sub, created=at, event_id=event_id)


def invoice(event_id: str, at: int) -> bytes:
    paid = payload("stripe/invoice", amount_paid=1000)
    return stripe_event("invoice.paid", paid, created=at, event_id=event_id)


def test_a_stripe_list_page_per_line_is_read_oldest_first(tmp_path: Path) -> None:
    newest_first = {
        "object": "list",
        "data": [orjson.loads(invoice("evt_2", 200)), orjson.loads(created("evt_1", 100))],
        "has_more": False,
    }
    file = tmp_path / "events.jsonl"
    file.write_bytes(orjson.dumps(newest_first) + b"\n\n" + invoice("evt_3", 300) + b"\n")
    ids = [orjson.loads(p)["id"] for p in read_payloads(file)]
    assert ids == ["evt_1", "evt_2", "evt_3"]


def test_a_json_array_is_read_as_it_is(tmp_path: Path) -> None:
    file = tmp_path / "events.json"
    file.write_bytes(b"[" + created("evt_1", 100) + b"," + invoice("evt_2", 50) + b"]")
    assert [orjson.loads(p)["id"] for p in read_payloads(file)] == ["evt_1", "evt_2"]


def test_a_line_that_is_not_json_is_named(tmp_path: Path) -> None:
    file = tmp_path / "events.jsonl"
    file.write_bytes(created("evt_1", 100) + b"\n{oops\n")
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        read_payloads(file)


def test_plan_orders_by_event_time_and_counts_every_verdict() -> None:
    tiered = subscription()
    tiered["items"]["data"][0]["price"].update(unit_amount=None, unit_amount_decimal=None)
    payloads = [
        invoice("evt_late", 300),
        created("evt_early", 100),
        orjson.dumps(payload("stripe/event")),  # plan.created: not mapped
        stripe_event("customer.subscription.created", tiered, event_id="evt_tiered"),
    ]
    tally = Tally()
    records = plan(SETTINGS, "stripe", payloads, tally)
    assert (tally.accepted, tally.ignored, tally.dead_lettered) == (2, 1, 1)
    assert tally.reasons == {"unsupported_price": 1}
    assert [r.topic for r in records] == ["t.billing", "t.billing", "t.deadletter"]
    assert [orjson.loads(r.value)["id"] for r in records[:2]] == [
        "stripe:evt_early",
        "stripe:evt_late",
    ]
    assert records[0].key == b"acme"
    assert dict(records[2].headers)["cs-ingest-source"] == b"stripe"
    assert tally.line() == (
        "2 event(s) produced, 1 ignored (types not mapped), 1 dead-lettered (unsupported_price: 1)"
    )
