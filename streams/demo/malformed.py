"""Deliberately invalid replacements for demo events, one kind per dead-letter reason.

A share of the world's events (``GeneratorConfig.malformed_share``) is
swapped for one of these so the dead-letter path and its metrics show in a
demo. Each takes the seeded random stream, the valid event and the
configured currency, and returns the bytes to publish instead.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson

from schemas.models import SURVEYS

MalformFn = Callable[[random.Random, dict[str, Any], str], bytes]


def _not_json(rng: random.Random, event: dict[str, Any], currency: str) -> bytes:
    """Truncated or binary garbage, as a broken producer would send."""
    raw = orjson.dumps(event)
    return rng.choice((raw[: len(raw) // 2], b"\xff\xfe\x00garbage", b"ping"))


def _json_array(rng: random.Random, event: dict[str, Any], currency: str) -> bytes:
    """Valid JSON but not an object (a batch wrapped in a list)."""
    return orjson.dumps([event])


def _no_account(rng: random.Random, event: dict[str, Any], currency: str) -> bytes:
    """The one data field every type requires is missing."""
    event["data"] = {k: v for k, v in event["data"].items() if k != "account_id"}
    return orjson.dumps(event)


def _unknown_type(rng: random.Random, event: dict[str, Any], currency: str) -> bytes:
    """A type from a newer producer version that this contract does not know."""
    family = event["type"].split(".")[0]
    event["type"] = f"{family}.{rng.choice(('escalated', 'paused', 'archived'))}"
    return orjson.dumps(event)


def _bad_time(rng: random.Random, event: dict[str, Any], currency: str) -> bytes:
    """Timestamps without offset, impossible dates, epoch numbers, prose."""
    t = event["time"]
    event["time"] = rng.choice((t[:-1], "2026-13-45T25:61:00Z", 1_700_000_000, "yesterday"))
    return orjson.dumps(event)


def _off_scale(rng: random.Random, event: dict[str, Any], currency: str) -> bytes:
    """A survey score outside its scale (NPS 11, CES 8, CSAT 0 ...)."""
    data = event["data"]
    limit = {"nps": 10, "ces": 7}.get(data["kind"], data.get("scale_max", 5))
    data["score"] = rng.choice((limit + 1, limit + 5, -1))
    return orjson.dumps(event)


def _wrong_currency(rng: random.Random, event: dict[str, Any], currency: str) -> bytes:
    """Money in a currency other than the reporting one."""
    event["data"]["currency"] = "EUR" if currency != "EUR" else "GBP"
    return orjson.dumps(event)


GENERIC: tuple[MalformFn, ...] = (_not_json, _json_array, _no_account, _unknown_type, _bad_time)


def malform(rng: random.Random, topic: str, event: dict[str, Any], currency: str) -> bytes:
    """Replace an event by an invalid one of a kind that makes sense on its topic.

    Surveys and money events are rare next to heartbeats, so the kinds only
    they can carry (score off scale, wrong currency) get half of their
    replacements; otherwise those reasons would hardly ever show in a demo.
    """
    special: MalformFn | None = None
    if topic == SURVEYS:
        special = _off_scale
    elif "currency" in event["data"]:
        special = _wrong_currency
    if special is not None and rng.random() < 0.5:
        return special(rng, event, currency)
    return rng.choice(GENERIC)(rng, event, currency)
