"""Vendor payloads for the source tests: the vendors' own examples (tests/vendor_payloads),
with single fields changed, and the signatures each vendor would send."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

PAYLOADS = Path(__file__).resolve().parent / "vendor_payloads"


def payload(name: str, **changes: Any) -> dict[str, Any]:
    """``vendor/file`` (without .json) with top-level ``changes``."""
    loaded: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    loaded.update(changes)
    return loaded


def subscription(**changes: Any) -> dict[str, Any]:
    """Stripe's subscription fixture (monthly $20.00 x1, active) with ``changes``."""
    sub = payload("stripe/subscription")
    sub.update(discount=None, discounts=[], trial_end=None, ended_at=None)
    sub["cancel_at_period_end"] = False
    sub.update(changes)
    return sub


def priced(
    sub: dict[str, Any], amount: int, interval: str, quantity: int = 1, every: int = 1
) -> dict[str, Any]:
    """``sub`` with its first item at ``amount`` cents per ``every`` ``interval`` x ``quantity``."""
    item = sub["items"]["data"][0]
    item["quantity"] = quantity
    item["price"].update(unit_amount=amount, unit_amount_decimal=str(amount))
    item["price"]["recurring"].update(interval=interval, interval_count=every)
    return sub


def stripe_event(
    kind: str,
    obj: dict[str, Any],
    previous: dict[str, Any] | None = None,
    created: int = 1_764_000_000,
    event_id: str | None = None,
) -> bytes:
    """Stripe's event fixture carrying ``obj`` as ``data.object``."""
    envelope = payload("stripe/event", type=kind, created=created)
    if event_id is not None:
        envelope["id"] = event_id
    envelope["data"] = {"object": obj}
    if previous is not None:
        envelope["data"]["previous_attributes"] = previous
    return orjson.dumps(envelope)
