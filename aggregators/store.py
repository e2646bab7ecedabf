"""The write side in Redis: load a batch's state, apply its effects atomically.

One batch costs two round trips: a pipelined read (applied offset, entity
states, seen ids) and one ``EVALSHA`` of :data:`APPLY_LUA`, which checks
that the partition's applied offset is still the one read (a fence), applies
every effect and advances the offset in the same atomic step. A redelivered
message is at or below the stored offset and is skipped; a batch that lost
the fence (another worker applied in between) is planned again. The round
trips are shared with the partitions the worker applies at the same time
(:class:`~aggregators.shared_pipeline.SharedPipeline`).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec
from redis.asyncio import Redis

from aggregators import keys
from aggregators.batch import BatchInput, BatchResult
from aggregators.config import MetricConfig
from aggregators.effects import Effects
from aggregators.entity_keys import EntityKey, facts_key
from aggregators.facts import Facts
from aggregators.families import FAMILIES
from aggregators.health_index import Due
from aggregators.plans import PlanEntry, PlanHistory
from aggregators.rolling import ApplyWindow, bucket_ttls, ttl_base, window_specs
from aggregators.scripts import script
from aggregators.shared_pipeline import Command, SharedPipeline

APPLY_LUA = script("window", "apply")
"""One batch of one partition, atomically (``aggregators/lua/apply.lua``)."""
_APPLY_SHA = hashlib.sha1(APPLY_LUA.encode()).hexdigest()

SEEN_LUA = script("seen")
"""Which of a batch's id digests the dedup index holds, as one string of 0s and 1s.

Why a script for one command: the digests go as one msgpack argument, not one
argument each, which is most of what the client spends on a batch's read."""
_SEEN_SHA = hashlib.sha1(SEEN_LUA.encode()).hexdigest()

HISTORIES_LUA = script("histories")
"""The plan histories of a batch's accounts: one command, not one ``ZRANGE`` each (a
command costs the client more than the few entries a history holds)."""
_HISTORIES_SHA = hashlib.sha1(HISTORIES_LUA.encode()).hexdigest()

_CHUNK = 500
"""Members per multi-member op: Lua's unpack() has a small stack."""


def _plan_entries(reply: Sequence[bytes]) -> list[PlanEntry]:
    """A plan history as stored (``<offset>|<label>`` scored by event time), as
    ``member, score, ...`` -> entries."""
    entries: list[PlanEntry] = []
    for i in range(0, len(reply), 2):
        offset, _, label = reply[i].decode().partition("|")
        entries.append((float(reply[i + 1]), int(offset), label))
    return entries


def _member_scores(reply: list[Any]) -> list[tuple[bytes, float]]:
    """``ZRANGE ... WITHSCORES`` as Redis sent it, [member, score] pairs (RESP3) or
    member, score, ... (RESP2), or as redis-py's cluster pipeline converts it (tuples)."""
    if reply and isinstance(reply[0], list | tuple):
        return [(member, float(score)) for member, score in reply]
    return [(member, float(score)) for member, score in zip(reply[0::2], reply[1::2], strict=True)]


def number(value: float) -> str:
    """Exact decimal text for Redis (no Lua float formatting on the way)."""
    if type(value) is float:  # the usual case, first: this runs for every amount written
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _field_amounts(fields: Mapping[str, float]) -> list[str]:
    """Field, amount, field, amount ... of a bucket's non-zero amounts, amounts as
    :func:`number` writes them (a backlog's batch writes about one per event)."""
    if 0.0 in fields.values():
        fields = {name: amount for name, amount in fields.items() if amount}
    pairs: list[str] = [""] * (2 * len(fields))
    pairs[0::2] = fields.keys()
    try:  # number(), inlined for the floats a tally holds
        pairs[1::2] = [str(int(a)) if a.is_integer() else repr(a) for a in fields.values()]
    except (AttributeError, OverflowError, ValueError):  # an int, or a float not finite
        pairs[1::2] = map(number, fields.values())
    return pairs


def score_text(value: float) -> str:
    """A time as text Redis reads back as the same double.

    A whole number of milliseconds (every Kafka timestamp, most event times) is
    written ``<ms>e-3``: the decimal it stands for is exactly the one ``repr``
    gives, so ``strtod`` rounds it to the same double, and writing it takes about
    0.6 of the time of ``repr``, which searches for the shortest text (a
    sorted-set member per event). Anything else, or anything not finite, by
    ``repr``."""
    try:
        ms = round(value * 1000)
    except (OverflowError, ValueError):  # inf, nan
        return repr(value)
    return f"{ms}e-3" if ms / 1000 == value else repr(value)


def scored(scores: Iterable[float], members: Iterable[str], size: int) -> list[str]:
    """Score, member, score, member ... as text, built a column at a time."""
    pairs: list[str] = [""] * (2 * size)
    try:  # score_text, inlined: this runs for every event
        pairs[0::2] = [f"{m}e-3" if (m := round(s * 1000)) / 1000 == s else repr(s) for s in scores]
    except (OverflowError, ValueError):  # a score not finite
        pairs[0::2] = map(score_text, scores)
    pairs[1::2] = members
    return pairs


@dataclass(frozen=True)
class PlanProgress:
    """A billing partition's applied offset (-1: none) and stream time (None: none yet)."""

    offset: int
    stream_time: float | None


@dataclass
class Loaded:
    """What the planner needs from Redis for one batch."""

    offset: int
    """Last applied offset of the partition, -1 when none."""
    stream_time: float | None = None
    """Largest event time applied in the partition (None before its first event): the
    partition's clock under ``clock=watermark``."""
    states: dict[EntityKey, bytes | str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    plans: PlanHistory = field(default_factory=PlanHistory)
    """The plan histories of the batch's accounts, from their billing partition."""
    plan_progress: PlanProgress | None = None
    """How far the batch's billing partition is applied (None for billing itself)."""

    def batch_input(self, labels: Mapping[str, str]) -> BatchInput:
        return BatchInput(states=self.states, seen=self.seen, plans=self.plans, labels=labels)


@dataclass
class DueMirrors:
    """Accounts of a partition whose facts a batch changed but no worker mirrored yet."""

    up_to: float
    """The newest batch offset among them: what :meth:`PartitionStore.mirrored` clears."""
    stream_time: float | None
    facts: dict[str, Facts]
    """Account -> the partition's current facts (accounts whose facts expired are left out)."""


class _Script:
    """Accumulates ops and the keys they touch, for one EVALSHA."""

    def __init__(self, first_key: str) -> None:
        self.keys: list[str] = [first_key]
        self._index: dict[str, int] = {first_key: 1}
        self.ops: list[list[Any]] = []

    def key(self, name: str) -> int:
        index = self._index.get(name)
        if index is None:
            self.keys.append(name)
            index = self._index[name] = len(self.keys)
        return index

    def op(self, code: str, key: str, *args: Any) -> None:
        self.ops.append([code, self.key(key), *args])

    def members(self, code: str, key: str, members: Sequence[Any]) -> None:
        for start in range(0, len(members), _CHUNK):
            self.op(code, key, *members[start : start + _CHUNK])

    @contextmanager
    def skiplist(self, key: str) -> Iterator[None]:
        """Write a sorted set with fractional scores as a skiplist, not a listpack.

        A small sorted set (and a new one, whatever the batch adds) is a listpack,
        which keeps each score as text and parses every score it passes on each
        insert: that was once a third of the apply's time. A member longer than
        ``zset-max-listpack-value``, added first and removed after, turns it into a
        skiplist, which deletions do not turn back (Redis 6.2 and 7).
        """
        self.op("zs", key)
        yield
        self.op("zu", key)


class PartitionStore:
    """Reads and writes one topic-partition's state."""

    def __init__(
        self,
        redis: Redis,
        config: MetricConfig,
        topic: str,
        partition: int,
        family: str,
        pipeline: SharedPipeline | None = None,
    ) -> None:
        self.pipeline = pipeline or SharedPipeline(redis)
        """Loads and applies travel with those of the worker's other partitions."""
        self.config = config
        self.family = family
        self.tag = keys.partition_tag(topic, partition)
        self.plan_tag = keys.partition_tag(config.plan_topic, partition)
        """The co-partitioned billing partition: where this partition's accounts' plans are."""
        self._release: float | None = None
        """Offset up to which the due list is mirrored but not yet forgotten in Redis: the
        next write of the partition forgets it (no round trip of its own)."""

    async def applied_offset(self) -> int:
        """Last offset applied to the partition, -1 when Redis holds none."""
        (raw,) = await self.pipeline.execute([("HGET", keys.meta(self.tag), keys.OFFSET)])
        return int(raw) if raw is not None else -1

    async def load(
        self,
        entity_keys: Iterable[EntityKey],
        digests: Sequence[str],
        accounts: Iterable[str] = (),
    ) -> Loaded:
        """One pipelined round trip: offset and stream time, entity states, which of the
        batch's id digests were applied before, account plans.

        It also (re)registers the partition for the readers, so a registry
        lost with Redis's data comes back with the next batch. Digests live in
        one sorted set per partition and are looked up by digest only, so an id
        seen before counts as a duplicate whatever time its new copy carries.
        """
        entity_keys, accounts = list(entity_keys), sorted(set(accounts))
        return await self._load(entity_keys, list(digests), accounts)

    async def _load(
        self, entity_keys: list[EntityKey], digests: list[str], accounts: list[str]
    ) -> Loaded:
        # commands by name: redis-py's cluster pipeline refuses .mget() and .evalsha()
        commands: list[Command] = [
            ("HSET", keys.REGISTRY, self.tag, self.family),
            ("HMGET", keys.meta(self.tag), keys.OFFSET, keys.MAX_TS),
        ]
        if entity_keys:
            commands.append(("MGET", *[keys.entity(self.tag, k.text()) for k in entity_keys]))
        if digests:
            encoded = msgspec.msgpack.encode(digests)
            commands.append(("EVALSHA", _SEEN_SHA, 1, keys.seen(self.tag), encoded))
        reads_progress = self.plan_tag != self.tag
        if reads_progress:  # before the histories: they are then at least as new
            commands.append(("HMGET", keys.meta(self.plan_tag), keys.OFFSET, keys.MAX_TS))
        if accounts:
            history_keys = [keys.plan_history(self.plan_tag, account) for account in accounts]
            commands.append(("EVALSHA", _HISTORIES_SHA, len(history_keys), *history_keys))
        replies = iter(await self.pipeline.execute(commands, (SEEN_LUA, HISTORIES_LUA)))
        next(replies)  # the registry write
        raw_offset, raw_max_ts = next(replies)
        loaded = Loaded(
            offset=int(raw_offset) if raw_offset is not None else -1,
            stream_time=float(raw_max_ts) if raw_max_ts is not None else None,
        )
        if entity_keys:
            found = zip(entity_keys, next(replies), strict=True)
            loaded.states = {k: v for k, v in found if v is not None}
        if digests:
            hits = keys.text(next(replies))
            loaded.seen = {d for d, hit in zip(digests, hits, strict=True) if hit == "1"}
        if reads_progress:
            plan_offset, plan_max_ts = next(replies)
            loaded.plan_progress = PlanProgress(
                int(plan_offset) if plan_offset is not None else -1,
                float(plan_max_ts) if plan_max_ts is not None else None,
            )
        if accounts:
            histories = zip(accounts, next(replies), strict=True)
            loaded.plans = PlanHistory({a: _plan_entries(reply) for a, reply in histories})
        return loaded

    async def apply(
        self,
        result: BatchResult,
        expected: int,
        new_offset: int,
        t: float,
        stream_time: float | None = None,
        arrived: Mapping[str, float] | None = None,
    ) -> bool:
        """Write a batch's result and advance the offset, unless the fence moved (False).

        ``t``: the batch's clock time; ``stream_time``: the partition's largest event
        time applied before the batch (None: none yet); ``arrived``: each event id
        digest's record timestamp, which scores and ages the dedup index (missing: now).
        """
        max_ts = result.outcome.max_event_time
        base = ttl_base(t, max_ts)
        script = self._render(result, t, base)
        self._render_seen(script, result, arrived or {})
        if result.effects.plan_events:
            self._render_plans(script, result, max(stream_time or -math.inf, max_ts or -math.inf))
        release = self._release
        self._render_due(script, result, new_offset, release)
        windows = self._windows(script, result.effects, base)
        script.key(keys.guard(self.tag))
        command = (
            "EVALSHA",
            _APPLY_SHA,
            len(script.keys),
            *script.keys,
            str(expected),
            str(new_offset),
            msgspec.msgpack.encode(script.ops),
            "" if max_ts is None else number(max_ts),
            msgspec.msgpack.encode(windows),
            keys.bucket_prefix(self.tag),
            number(base),
        )
        (reply,) = await self.pipeline.execute([command], (APPLY_LUA,))
        applied = int(reply[0]) == 1
        if applied:
            self._released(release)
        return applied

    async def due_mirrors(self) -> DueMirrors | None:
        """The accounts left to mirror (None when there are none), with their current facts.

        Read newest-last, so the facts are at least as new as every batch listed. A
        release still pending (:meth:`release_later`) is written first, in the same
        round trip, so batches this worker mirrored are not mirrored again. The
        round trip is shared with the worker's other partitions checked meanwhile.
        """
        release = self._release
        commands = [
            *self._release_commands(release),
            ("HGET", keys.meta(self.tag), keys.MAX_TS),
            ("ZRANGE", keys.mirror_due(self.tag), 0, -1, "WITHSCORES"),
        ]
        *_released, raw_max_ts, due = await self.pipeline.execute(commands)
        self._released(release)
        if not due:
            return None
        listed = _member_scores(due)
        accounts = [keys.text(member) for member, _score in listed]
        names = [keys.entity(self.tag, facts_key(a).text()) for a in accounts]
        (raw_facts,) = await self.pipeline.execute([("MGET", *names)])
        family = FAMILIES[self.family]
        found = list(zip(accounts, raw_facts, strict=True))
        facts = {a: family.decode_facts(raw) for a, raw in found if raw is not None}
        expired = [a for a, raw in found if raw is None]
        if expired:  # nothing left to mirror: no server can lack a mirror of them
            await self.pipeline.execute([("ZREM", keys.mirror_due(self.tag), *expired)])
        stream_time = float(raw_max_ts) if raw_max_ts is not None else None
        return DueMirrors(max(score for _m, score in listed), stream_time, facts)

    def due(self, up_to: float) -> Due:
        """The partition's due list, to forget the accounts listed up to this batch offset."""
        return Due(keys.mirror_due(self.tag), math.floor(up_to))

    async def mirrored(self, up_to: float) -> None:
        """The accounts due up to this batch offset are mirrored: forget them now."""
        await self.pipeline.execute(self._release_commands(up_to))

    def release_later(self, up_to: float) -> None:
        """The accounts due up to this batch offset are mirrored: the partition's next
        apply (or :meth:`due_mirrors`, or :meth:`flush_release`) forgets them. Only on
        Cluster, where the index script cannot forget them itself (other slots).

        Until then they stay listed, and a worker that takes the partition over
        mirrors them again, which is harmless (a mirror holds full values): one
        round trip fewer per batch against an extra mirror after a crash.
        """
        self._release = up_to if self._release is None else max(self._release, up_to)

    async def flush_release(self) -> None:
        """Write a pending release now (the worker calls it when its stream is idle)."""
        release = self._release
        if release is None:
            return
        await self.pipeline.execute(self._release_commands(release))
        self._released(release)

    def _release_commands(self, release: float | None) -> list[Command]:
        """Forget the due accounts up to ``release`` (none when no release is pending)."""
        if release is None:
            return []
        return [("ZREMRANGEBYSCORE", keys.mirror_due(self.tag), "-inf", release)]

    def _released(self, release: float | None) -> None:
        """The release written is forgotten, unless a newer one came meanwhile."""
        if release is not None and self._release == release:
            self._release = None

    def _windows(self, script: _Script, effects: Effects, base: float) -> list[ApplyWindow]:
        """The rolling windows this batch's buckets feed (none when it counts nothing), each
        with what the batch adds to it: the sum of its buckets from the window's first
        bucket at ``base`` on (where the script moves its cursor before adding)."""
        by_granularity: dict[int, list[tuple[int, Mapping[str, float]]]] = {}
        for (g, index), amounts in effects.counters.items():
            by_granularity.setdefault(g, []).append((index, amounts))
        windows = []
        for spec in window_specs(self.config.windows, base):
            buckets = by_granularity.get(spec.granularity)
            if buckets is None:
                continue
            sums: dict[str, float] = {}
            for index, bucket in buckets:
                if index >= spec.low:
                    for name, amount in bucket.items():
                        if amount:
                            sums[name] = sums.get(name, 0.0) + amount
            pairs = [x for name, amount in sums.items() for x in (name, number(amount))]
            windows.append(ApplyWindow(*spec, script.key(keys.window(self.tag, spec.name)), pairs))
        return windows

    def _render(self, result: BatchResult, t: float, base: float) -> _Script:
        script = _Script(keys.meta(self.tag))
        applied_at = keys.applied_at(self.tag)
        script.op("set", applied_at, f"{time.time():.3f}", "0")  # for `cspulse status`
        self._render_counters(script, result.effects, t, base)
        self._render_entities(script, result.effects)
        self._render_live(script, result.effects, t)
        return script

    def _render_plans(self, script: _Script, result: BatchResult, stream_time: float) -> None:
        """Add the batch's plan-naming events to their accounts' histories; trim each to
        what an event inside the retention (plus the plan lateness) can still ask for."""
        cutoff = number(stream_time - self.config.plan_history_kept)
        for account, entries in result.effects.plan_events.items():
            key = keys.plan_history(self.tag, account)
            pairs = [x for ts, offset, label in entries for x in (number(ts), f"{offset}|{label}")]
            script.op("zm", key, *pairs)
            script.op("pt", key, cutoff)

    def _render_due(
        self, script: _Script, result: BatchResult, new_offset: int, release: float | None
    ) -> None:
        """List the accounts whose facts change, until the worker has mirrored them; forget
        those of earlier batches mirrored since (``release``: up to that offset)."""
        if release is not None:
            script.op("zt", keys.mirror_due(self.tag), number(math.floor(release) + 1))
        if result.effects.facts:
            offset = str(new_offset)
            pairs = [x for account in sorted(result.effects.facts) for x in (offset, account)]
            due = keys.mirror_due(self.tag)
            with script.skiplist(due):
                script.members("zm", due, pairs)

    def _render_seen(
        self, script: _Script, result: BatchResult, arrived: Mapping[str, float]
    ) -> None:
        """Remember the batch's ids (applied, or dropped as too late); forget those that
        arrived more than the dedup horizon before the batch's newest record.

        The horizon is measured on arrival, the Kafka record timestamps (events.md): a
        producer's retry is caught however old the event it carries and however long
        the worker was down before reading it.
        """
        digests = [*result.seen, *(item.digest for item in result.outcome.too_late)]
        if not digests:
            return
        now = time.time()
        scores = [arrived.get(digest, now) for digest in digests]
        seen = keys.seen(self.tag)
        # scores as text (repr reads back as the same double): a Lua number would be
        # formatted with %.17g on its way to Redis, which costs more than the ZADD
        pairs = scored(scores, digests, len(digests))
        with script.skiplist(seen):
            script.members("zm", seen, pairs)
        script.op("zt", seen, number(max(scores) - self.config.dedup_horizon))

    def _render_counters(self, script: _Script, effects: Effects, t: float, base: float) -> None:
        """One ``b`` op per bucket: its TTL, then field, amount pairs (zeros left out)."""
        windows = self.config.windows
        ttl = bucket_ttls(windows, base)
        for (g, index), fields in effects.counters.items():
            bucket = keys.bucket(self.tag, g, index)
            script.op("b", bucket, g, index, str(ttl(index, g)), *_field_amounts(fields))
        for name, latest in effects.last_seen.items():
            key = keys.last_seen(self.tag, name)
            pairs = scored(latest.values(), latest.keys(), len(latest))
            with script.skiplist(key):
                script.members("zg", key, pairs)
                cutoff = t - windows.longest.seconds - windows.longest.granularity
                script.op("zt", key, number(cutoff))
        for name, amount in effects.gauges.items():
            if amount:
                script.op("hf", keys.gauges(self.tag), name, number(amount))

    def _render_entities(self, script: _Script, effects: Effects) -> None:
        for key, state in effects.entities.items():
            full = keys.entity(self.tag, key.text())
            if state is None:
                script.op("del", full)
                continue
            ttl = "0" if key in effects.persistent else str(self.config.entity_ttl(key.kind))
            script.op("set", full, state, ttl)

    def _render_live(self, script: _Script, effects: Effects, t: float) -> None:
        if not effects.live:
            return
        live = keys.live_sessions(self.tag)
        with script.skiplist(live):
            for member, latest in effects.live.items():
                if latest is None:
                    script.op("zr", live, member)
                else:
                    script.op("za", live, score_text(latest), member)
            script.op("zt", live, number(t - 2 * self.config.idle_timeout))
