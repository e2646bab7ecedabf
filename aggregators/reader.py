"""The read side in Redis: one pipelined round trip gathers a whole scrape.

Per partition, :data:`READ_LUA` reads each window's rolling sum (one hash,
trimmed to the reading time; see :mod:`aggregators.rolling`) in one script
call within the partition's slot, so it also runs on Redis Cluster; the
gauges, live sessions and last event times come back in the same pipeline.
Distinct users and accounts are exact: a sorted set per partition keeps
each member's latest event time, and the partitions' members are united,
not their counts added (:mod:`aggregators.distinct`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import msgspec
from redis import Redis
from redis.exceptions import NoScriptError

from aggregators import keys, plans
from aggregators.clock import WALL, Clock
from aggregators.config import MetricConfig
from aggregators.distinct import DISTINCT_LUA, DistinctQuery, distinct_names
from aggregators.families import FAMILIES, sessions
from aggregators.health_index import usage_key
from aggregators.readout import Snapshot
from aggregators.rolling import ReadWindow, window_specs
from aggregators.scripts import script

READ_LUA = script("window", "read")
"""Per partition: each window's rolling sum, its cursor moved to the reading time
and the buckets dated after it taken off. Writes only the cursors (the same
state, trimmed): see :mod:`aggregators.rolling`."""


@dataclass
class ReadResult:
    snapshot: Snapshot
    t: float
    latest: dict[str, float] = field(default_factory=dict)
    """Topic -> largest event time applied."""


class Reader:
    """Reads the state every replica shares; safe to call from any thread."""

    def __init__(self, redis: Redis, config: MetricConfig, clock: Clock = WALL) -> None:
        self.redis = redis
        self.config = config
        self.clock = clock
        self._sum = redis.register_script(READ_LUA)
        self._distinct = redis.register_script(DISTINCT_LUA)

    def partitions(self) -> dict[str, str]:
        """Partition tag -> family, from the registry the workers maintain."""
        raw = self.redis.hgetall(keys.REGISTRY)
        return {keys.text(k): keys.text(v) for k, v in raw.items()}

    def read(self, now: float | None = None) -> ReadResult:
        parts = self.partitions()
        metas = self._metas(parts)
        t = self._reading_time(metas, now)
        snapshot = self._gather(parts, t)
        latest: dict[str, float] = {}
        for tag, meta in metas.items():
            if meta is not None:
                topic = tag[1:-1].rsplit(":", 1)[0]
                latest[topic] = max(latest.get(topic, meta), meta)
        return ReadResult(snapshot=snapshot, t=t, latest=latest)

    def _metas(self, parts: dict[str, str]) -> dict[str, float | None]:
        pipe = self.redis.pipeline(transaction=False)
        for tag in parts:
            pipe.hget(keys.meta(tag), keys.MAX_TS)
        values = pipe.execute() if parts else []
        return {
            tag: float(v) if v is not None else None for tag, v in zip(parts, values, strict=True)
        }

    def reading_time(self) -> float:
        """The t windows are read at: wall clock, or the watermark."""
        return self._reading_time(self._metas(self.partitions()), None)

    def _reading_time(self, metas: dict[str, float | None], now: float | None) -> float:
        return self.clock.reading_time(metas.values(), now)

    def _gather(self, parts: dict[str, str], t: float) -> Snapshot:
        """One pipeline; a server that lost the script (restart, failover) gets it again."""
        try:
            return self._gather_once(parts, t)
        except NoScriptError:
            for script in (self._sum, self._distinct):
                self.redis.script_load(script.script)
            return self._gather_once(parts, t)

    def _gather_once(self, parts: dict[str, str], t: float) -> Snapshot:
        # EVALSHA by name: redis-py's cluster pipeline refuses Script objects; every
        # call carries its partition's keys only, so the client routes it to one slot
        pipe = self.redis.pipeline(transaction=False)
        plan: list[tuple[str, str]] = []
        for tag in parts:
            window_keys, args = self._sum_call(tag, t)
            evalsha = (self._sum.sha, len(window_keys), *window_keys, *args)
            pipe.execute_command("EVALSHA", *evalsha)  # type: ignore[no-untyped-call]
            pipe.hgetall(keys.gauges(tag))
            plan.append(("sums", tag))
            plan.append(("gauges", tag))
            if _tracks_live(parts[tag]):
                pipe.zcount(keys.live_sessions(tag), f"({t - self.config.idle_timeout}", "+inf")
                plan.append(("live", tag))
        labels = self._plan_labels()
        query = self._queue_distinct(pipe, parts, t, labels)
        paying_plan = self._queue_paying_active(pipe, t, labels)
        replies = pipe.execute()
        return self._snapshot(plan, query, paying_plan, replies)

    def _sum_call(self, tag: str, t: float) -> tuple[list[str], list[Any]]:
        """Keys and arguments of one :data:`READ_LUA` call for the partition ``tag``."""
        windows = self.config.windows
        specs = [
            ReadWindow(*spec, window.bucket_range(t)[1])
            for spec, window in zip(window_specs(windows, t), windows, strict=True)
        ]
        window_keys = [keys.window(tag, w.name) for w in windows]
        args = [keys.bucket_prefix(tag), repr(float(t)), msgspec.msgpack.encode(specs)]
        return [keys.meta(tag), *window_keys, keys.guard(tag)], args

    def _plan_labels(self) -> list[str]:
        admitted = sorted(keys.text(m) for m in self.redis.smembers(keys.PLAN_NAMES))
        return [*admitted, plans.OTHER, plans.NONE]

    def _queue_distinct(
        self, pipe: Any, parts: dict[str, str], t: float, plan_labels: list[str]
    ) -> DistinctQuery:
        """One :data:`DISTINCT_LUA` call per usage partition; the replies are united later."""
        usage_tags = [tag for tag, family in parts.items() if _distinct(family)]
        bases = list(dict.fromkeys(name for f in FAMILIES.values() for name in f.distinct))
        names = distinct_names(plan_labels, bases)
        query = DistinctQuery.at(self.config.windows, t, names, usage_tags)
        for tag in query.tags:
            pipe.execute_command("EVALSHA", self._distinct.sha, *query.call(tag))
        return query

    def _queue_paying_active(
        self, pipe: Any, t: float, plan_labels: list[str]
    ) -> list[tuple[str, str]]:
        """ZCOUNT per window and plan of the health index's paying accounts by latest session.

        One key for all partitions (written after each apply), so no union is needed.
        """
        queued: list[tuple[str, str]] = []
        for window in self.config.windows:
            start = window.bucket_range(t)[0] * window.granularity
            for plan in (None, *plan_labels):
                pipe.zcount(usage_key(plan), start, "+inf")
                name = sessions.PAYING_ACTIVE
                queued.append((name if plan is None else plans.segmented(name, plan), window.name))
        return queued

    def _snapshot(
        self,
        plan: list[tuple[str, str]],
        query: DistinctQuery,
        paying_plan: list[tuple[str, str]],
        replies: list[Any],
    ) -> Snapshot:
        sums: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
        gauges: defaultdict[str, float] = defaultdict(float)
        live: int | None = None
        names = [w.name for w in self.config.windows]
        for (kind, _tag), reply in zip(plan, replies, strict=False):
            if kind == "sums":
                for window_name, flat in zip(names, reply, strict=True):
                    for i in range(0, len(flat), 2):
                        sums[window_name][keys.text(flat[i])] += float(flat[i + 1])
            elif kind == "gauges":
                for f, v in reply.items():
                    gauges[keys.text(f)] += float(v)
            else:
                live = (live or 0) + int(reply)
        rest = len(plan) + len(query.tags)
        distinct = query.counts(replies[len(plan) : rest])
        for key, count in zip(paying_plan, replies[rest:], strict=True):
            distinct[key] = int(count)
        return Snapshot(
            sums={k: dict(v) for k, v in sums.items()},
            gauges=_clean(gauges),
            distinct={k: v for k, v in distinct.items() if v or plans.SEP not in k[0]},
            live_sessions=live or 0,
        )


def _clean(values: dict[str, float]) -> dict[str, float]:
    """Round float noise off amounts that are whole numbers by nature."""
    return {
        k: (round(v) if math.isclose(v, round(v), abs_tol=1e-6) else v) for k, v in values.items()
    }


def _tracks_live(family_name: str) -> bool:
    """Whether the family keeps live entities (``cs:{tp}:live``, counted at scrape time)."""
    family = FAMILIES.get(family_name)
    return family is not None and family.entity is not None and family.entity.tracks_live


def _distinct(family_name: str) -> tuple[str, ...]:
    """The distinct counts whose last-seen sets the family's partitions keep."""
    family = FAMILIES.get(family_name)
    return () if family is None else family.distinct
