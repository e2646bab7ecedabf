"""``cspulse deadletter list|replay`` and ``cspulse status``: the operator's view.

Dead letters keep the original bytes and say where they came from (headers
``cs-source-topic``, ``-partition``, ``-offset``, ``cs-reason``,
``cs-detail``), so they can be listed and published again to their source
topic once the cause is fixed (a schema change, a raised limit, a repaired
producer). Replaying is safe to repeat: a letter whose event was applied in
the meantime carries an event id the worker has already seen within the
dedup horizon, and is counted as a duplicate, not applied twice.

``status`` puts Redis's applied offset next to Kafka's end offset for every
partition: what a worker has applied is what Redis says, not what Kafka's
consumer group has committed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from redis import Redis
from redis.exceptions import RedisError

from aggregators.layout import LayoutMismatch, check_layout
from aggregators.status import partition_status
from aggregators.windows import parse_duration
from streams.config import DEFAULTS, FAMILY_TOPICS, Settings
from streams.kafka_options import client_options
from streams.options import Bootstrap, RedisUrl, TopicPrefix

deadletter_app = typer.Typer(
    help="List dead-lettered events, and publish them again to their source topic.",
    no_args_is_help=True,
)

Reason = Annotated[
    str | None, typer.Option("--reason", help="Only letters with this reason, e.g. currency.")
]
Since = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="Only letters written since then: a duration ago (2h, 7d) or an RFC 3339 time.",
    ),
]


@dataclass(frozen=True)
class Letter:
    """One dead letter: where it sits, where it came from, why, and its original bytes."""

    partition: int
    offset: int
    written: float
    key: bytes | None
    value: bytes
    source_topic: str
    source_partition: int
    source_offset: int
    reason: str
    detail: str
    truncated: bool
    ingest_source: str = ""
    """The ingest endpoint that dead-lettered a vendor payload (``stripe``, ...), else empty."""

    @property
    def source(self) -> str:
        if self.ingest_source:
            return f"ingest:{self.ingest_source}"
        return f"{self.source_topic}:{self.source_partition}"


def letter_of(record: Any) -> Letter:
    """A consumed record as a Letter; missing headers read as empty (hand-written letters)."""
    headers = {k: v.decode(errors="replace") for k, v in (record.headers or ())}
    return Letter(
        partition=record.partition,
        offset=record.offset,
        written=record.timestamp / 1000,
        key=record.key,
        value=record.value or b"",
        source_topic=headers.get("cs-source-topic", ""),
        source_partition=int(headers.get("cs-source-partition") or -1),
        source_offset=int(headers.get("cs-source-offset") or -1),
        reason=headers.get("cs-reason", ""),
        detail=headers.get("cs-detail", ""),
        truncated="cs-truncated-from-bytes" in headers,
        ingest_source=headers.get("cs-ingest-source", ""),
    )


def since_time(text: str | None, now: float) -> float | None:
    """``--since`` as Unix seconds: a duration before ``now``, or an RFC 3339 time."""
    if text is None:
        return None
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration (30m, 2h, 7d) nor an RFC 3339 time "
            "(2026-11-23T07:00:00Z)",
            param_hint="--since",
        ) from None
    if moment.tzinfo is None:
        raise typer.BadParameter("give the time an offset, e.g. Z or +02:00", param_hint="--since")
    return moment.timestamp()


def selected(letters: Iterable[Letter], reason: str | None, since: float | None) -> list[Letter]:
    return [
        x
        for x in letters
        if (reason is None or x.reason == reason) and (since is None or x.written >= since)
    ]


async def read_letters(settings: Settings, bootstrap: str, timeout: float = 30) -> list[Letter]:
    """Every letter in the dead-letter topic, read from the start without a consumer group."""
    consumer = AIOKafkaConsumer(
        **client_options(settings, bootstrap), enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(settings.deadletter_topic)
        if partitions is None:
            await consumer.topics()  # refresh metadata once: the topic may be new
            partitions = consumer.partitions_for_topic(settings.deadletter_topic) or set()
        tps = [TopicPartition(settings.deadletter_topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        ends = await log_end_offsets(consumer, tps)
        await consumer.seek_to_beginning(*tps)
        return await _drain(consumer, ends, timeout)
    finally:
        await consumer.stop()


async def log_end_offsets(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], timeout: float = 10
) -> dict[TopicPartition, int]:
    """Each assigned partition's log-end offset, confirmed by a fetch's high watermark.

    ListOffsets gives the end; fetching the last record confirms it, because
    some Kafka-protocol brokers (Tansu 0.6) answer ListOffsets with the last
    record batch's first offset + 1, which would hide every record after it.
    """
    ends: dict[TopicPartition, int] = dict(await consumer.end_offsets(tps))
    pending = {tp for tp in tps if ends[tp] > 0}
    for tp in pending:
        consumer.seek(tp, ends[tp] - 1)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        await consumer.getmany(*pending, timeout_ms=200)
        for tp in list(pending):
            high = consumer.highwater(tp)
            if high is not None:
                ends[tp] = max(ends[tp], high)
                pending.discard(tp)
    return ends


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


async def _drain(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int], timeout: float
) -> list[Letter]:
    letters: list[Letter] = []
    deadline = time.monotonic() + timeout
    while await _behind(consumer, ends):
        if time.monotonic() > deadline:
            raise TimeoutError(f"could not read the dead-letter topic to its end in {timeout:.0f}s")
        batch = await consumer.getmany(timeout_ms=500)
        for tp, records in batch.items():
            letters += [letter_of(r) for r in records if r.offset < ends[tp]]
    return sorted(letters, key=lambda x: (x.written, x.partition, x.offset))


def preview(value: bytes, width: int) -> str:
    """The first bytes of a letter, printable on one line."""
    head = value[:width].decode("utf-8", errors="replace")
    text = "".join(c if c.isprintable() else "." for c in head)
    return text + ("..." if len(value) > width else "")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned plain-text columns (the last one unpadded)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, str(row[-1])]).rstrip())
    return "\n".join(lines)


def _fail(message: str) -> NoReturn:
    typer.secho(f"cspulse: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


def _settings(bootstrap: str | None, prefix: str) -> tuple[Settings, str]:
    given: dict[str, Any] = {"kafka_bootstrap": bootstrap, "topic_prefix": prefix}
    settings = Settings(**{k: v for k, v in given.items() if v is not None})
    if not settings.kafka_bootstrap:
        _fail("needs CSPULSE_KAFKA_BOOTSTRAP (or --kafka-bootstrap host:port).")
    return settings, settings.kafka_bootstrap


@deadletter_app.command("list")
def list_letters(
    kafka_bootstrap: Bootstrap = None,
    topic_prefix: TopicPrefix = DEFAULTS.topic_prefix,
    reason: Reason = None,
    since: Since = None,
    width: Annotated[int, typer.Option(help="Bytes of each letter to show.")] = 60,
) -> None:
    """Print the dead letters: source, offset, reason, detail and their first bytes."""
    settings, bootstrap = _settings(kafka_bootstrap, topic_prefix)
    letters = selected(
        asyncio.run(read_letters(settings, bootstrap)), reason, since_time(since, time.time())
    )
    rows = [
        [
            _iso(x.written),
            x.source,
            str(x.source_offset),
            x.reason,
            x.detail[:60],
            preview(x.value, width),
        ]
        for x in letters
    ]
    typer.echo(table(["written", "source", "offset", "reason", "detail", "first bytes"], rows))
    typer.echo(f"{len(letters)} letter(s) in {settings.deadletter_topic}")


def distinct_letters(letters: Iterable[Letter]) -> list[Letter]:
    """One letter per source message: a message dead-lettered twice is replayed once."""
    seen: set[tuple[str, int, int]] = set()
    out = []
    for x in letters:
        where = (x.source_topic, x.source_partition, x.source_offset)
        if where[0] and where not in seen:
            seen.add(where)
            out.append(x)
    return out


async def republish(settings: Settings, bootstrap: str, letters: Sequence[Letter]) -> None:
    """Publish each letter's original bytes and key to its source topic."""
    producer = AIOKafkaProducer(**client_options(settings, bootstrap), acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(
                x.source_topic,
                x.value,
                key=x.key,
                headers=[("cs-replay-of", f"{x.partition}:{x.offset}".encode())],
            )
            for x in letters
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@deadletter_app.command("replay")
def replay(
    kafka_bootstrap: Bootstrap = None,
    topic_prefix: TopicPrefix = DEFAULTS.topic_prefix,
    reason: Reason = None,
    since: Since = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be published.")
    ] = False,
) -> None:
    """Publish dead letters again to their source topic (safe to repeat: ids dedup)."""
    settings, bootstrap = _settings(kafka_bootstrap, topic_prefix)
    chosen = selected(
        asyncio.run(read_letters(settings, bootstrap)), reason, since_time(since, time.time())
    )
    _replay_ingest(settings, bootstrap, chosen, dry_run)
    chosen = [x for x in chosen if not x.ingest_source]  # mapped again above, not republished
    letters = distinct_letters(chosen)
    truncated = [x for x in letters if x.truncated]
    letters = [x for x in letters if not x.truncated]
    by_source: dict[str, int] = {}
    for x in letters:
        by_source[x.source_topic] = by_source.get(x.source_topic, 0) + 1
    summary = ", ".join(f"{n} to {topic}" for topic, n in sorted(by_source.items())) or "nothing"
    if dry_run:
        typer.echo(f"dry run: would publish {summary} ({len(chosen)} letter(s) matched)")
    else:
        asyncio.run(republish(settings, bootstrap, letters))
        typer.echo(f"published {summary} ({len(chosen)} letter(s) matched)")
    if len(chosen) > len(letters) + len(truncated):
        typer.echo(f"skipped {len(chosen) - len(letters) - len(truncated)} repeated letter(s)")
    if truncated:
        typer.echo(
            f"skipped {len(truncated)} truncated letter(s): their original bytes were too large "
            "for the dead-letter topic; re-send them from the producer"
        )
    if letters and not dry_run:
        typer.echo(
            "events the worker already applied count as duplicates; letters still invalid "
            "are dead-lettered again"
        )


def _replay_ingest(
    settings: Settings, bootstrap: str, chosen: Sequence[Letter], dry_run: bool
) -> None:
    """Letters of the HTTP ingest hold vendor payloads: mapped again, not republished."""
    from streams.ingest_import import Tally, plan, produce

    by_payload = {
        (x.ingest_source, x.value): x for x in chosen if x.ingest_source and not x.truncated
    }
    if not by_payload:
        return
    if dry_run:
        typer.echo(f"dry run: would map {len(by_payload)} ingest letter(s) again")
        return
    tally, records = Tally(), []
    for source in sorted({s for s, _ in by_payload}):
        payloads = [value for s, value in by_payload if s == source]
        records += plan(settings, source, payloads, tally)
    asyncio.run(produce(settings, bootstrap, records))
    typer.echo(f"mapped {len(by_payload)} ingest letter(s) again: {tally.line()}")


# ----------------------------------------------------------------------- status


async def end_offsets(settings: Settings, bootstrap: str) -> dict[tuple[str, int], int]:
    """Kafka's log-end offset of every partition of the event topics."""
    consumer = AIOKafkaConsumer(
        **client_options(settings, bootstrap), enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        await consumer.topics()
        tps = [
            TopicPartition(topic, p)
            for topic in (settings.topic(f) for f in FAMILY_TOPICS)
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not tps:
            return {}
        consumer.assign(tps)
        ends = await log_end_offsets(consumer, tps)
        return {(tp.topic, tp.partition): end for tp, end in ends.items()}
    finally:
        await consumer.stop()


STATUS_LEGEND = (
    "applied: offset of the last message applied to Redis; end: Kafka's log end offset, the\n"
    "offset the next message will get. lag = end - (applied + 1): a caught-up partition\n"
    "shows end = applied + 1 and lag 0. stream time: newest event time applied."
)


def status(
    kafka_bootstrap: Bootstrap = None,
    redis_url: RedisUrl = None,
    topic_prefix: TopicPrefix = DEFAULTS.topic_prefix,
) -> None:
    """Per partition: applied offset (Redis), end offset (Kafka), lag, stream time, last apply."""
    settings, bootstrap = _settings(kafka_bootstrap, topic_prefix)
    if not redis_url:
        _fail("status needs CSPULSE_REDIS_URL (or --redis-url redis://host:port/db).")
    try:
        check_layout(Redis.from_url(redis_url, socket_timeout=10))
    except LayoutMismatch as exc:
        _fail(str(exc))
    except (RedisError, OSError) as exc:
        _fail(f"cannot read Redis ({exc}); check CSPULSE_REDIS_URL and that Redis is up.")
    ends = asyncio.run(end_offsets(settings, bootstrap))
    try:
        rows = partition_status(Redis.from_url(redis_url, socket_timeout=10), ends)
    except (RedisError, OSError) as exc:
        _fail(f"cannot read Redis ({exc}); check CSPULSE_REDIS_URL and that Redis is up.")
    now = time.time()
    typer.echo(
        table(
            ["topic", "partition", "applied", "end", "lag", "stream time", "last apply"],
            [
                [
                    r.topic,
                    str(r.partition),
                    "-" if r.applied is None else str(r.applied),
                    str(r.end),
                    str(r.lag),
                    "-" if r.stream_time is None else _iso(r.stream_time),
                    "-" if r.applied_at is None else f"{max(0.0, now - r.applied_at):.0f}s ago",
                ]
                for r in rows
            ],
        )
    )
    typer.echo(f"total lag: {sum(r.lag for r in rows)} message(s)")
    typer.echo(STATUS_LEGEND)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
