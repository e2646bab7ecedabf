"""``cspulse import stripe|zendesk FILE`` and the replay of ingest dead letters.

Both map vendor payloads exactly as the webhooks are mapped, without a
signature: the operator vouches for a file or for a letter the ingest
verified before dead-lettering it. Records go out in event-time order,
oldest first (a subscription ignores an event older than the newest one it
applied, and Stripe lists events newest first), each batch acknowledged by
the broker before the next; unmappable payloads are dead-lettered as the
ingest does. The contract ids are the webhooks' own, so importing events the
webhooks already delivered, or importing twice, counts each event once
within the dedup horizon.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from schemas.sources import Ignored, Unmappable
from streams.app import DEAD_LETTER_MAX_BYTES
from streams.config import Settings
from streams.ingest import CLOUDEVENTS, Record, dead_letter, validated, vendors, verdict_of
from streams.kafka_options import client_options

BATCH = 500
"""Records produced before waiting for their acks (and reporting progress)."""


@dataclass
class Tally:
    """What a backfill or a replay came to."""

    accepted: int = 0
    ignored: int = 0
    dead_lettered: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        why = ", ".join(f"{r}: {n}" for r, n in sorted(self.reasons.items()))
        return (
            f"{self.accepted} event(s) produced, {self.ignored} ignored (types not mapped), "
            f"{self.dead_lettered} dead-lettered" + (f" ({why})" if why else "")
        )


def read_payloads(path: Path) -> list[bytes]:
    """A JSON array of vendor events, or one JSON value per line; a Stripe list page
    (``{"object": "list", "data": [...]}``) stands for its events, oldest first."""
    text = path.read_bytes()
    if text.lstrip().startswith(b"["):
        values = _json(text, f"{path}")
        return [orjson.dumps(v) for v in _events(values)]
    out: list[bytes] = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            out += [orjson.dumps(v) for v in _events(_json(line, f"{path} line {number}"))]
    return out


def _json(text: bytes, where: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{where} is not JSON ({exc})") from None


def _events(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [e for v in value for e in _events(v)]
    if isinstance(value, dict) and value.get("object") == "list":
        return list(reversed(value.get("data") or []))  # Stripe lists newest first
    return [value]


def plan(settings: Settings, source: str, payloads: Iterable[bytes], tally: Tally) -> list[Record]:
    """Every payload mapped and validated: records in time order, dead letters last."""
    mapping = vendors(settings)[source].mapping if source != CLOUDEVENTS else None
    records: list[Record] = []
    letters: list[Record] = []
    for body in payloads:
        verdict = verdict_of(settings, mapping(body)) if mapping else validated(settings, [body])
        if isinstance(verdict, Ignored):
            tally.ignored += 1
        elif isinstance(verdict, Unmappable):
            tally.dead_lettered += 1
            tally.reasons[verdict.reason] = tally.reasons.get(verdict.reason, 0) + 1
            letters.append(dead_letter(settings, source, body, verdict))
        else:
            tally.accepted += len(verdict)
            records += verdict
    return sorted(records, key=lambda r: r.time) + letters


async def produce(
    settings: Settings,
    bootstrap: str,
    records: Sequence[Record],
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> None:
    """Produce ``records`` in order, ``BATCH`` at a time, each batch acknowledged."""
    producer = AIOKafkaProducer(
        client_id=f"{settings.app_id}-import",
        acks="all",
        enable_idempotence=settings.ingest_idempotent,
        linger_ms=5,
        max_request_size=DEAD_LETTER_MAX_BYTES + 65536,
        **client_options(settings, bootstrap),
    )
    await producer.start()
    try:
        for start in range(0, len(records), BATCH):
            chunk = records[start : start + BATCH]
            acks = [
                await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
                for r in chunk
            ]
            await asyncio.gather(*acks)
            progress(start + len(chunk), len(records))
    finally:
        await producer.stop()
