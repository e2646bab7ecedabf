"""Steady rate: the worker fed at a fixed rate for minutes; freshness, RSS and Redis memory.

Why: the throughput benchmark says how fast a backlog drains; a live
deployment instead sees a steady stream and cares how soon an event shows
in ``/metrics`` and whether memory stays flat. This script starts a broker,
a Redis and ``python -m streams worker`` (wall clock, as deployed), then
produces the generator's mixed stream at ``--rate`` events/s for
``--minutes``, every event stamped with the wall time it is sent at.

Freshness (event produced -> visible in ``/metrics``): the business gauges
are read from Redis at scrape time, so an event is visible in ``/metrics``
from the moment its batch is applied. Every ``--poll`` seconds (0.05) the
benchmark reads each partition's latest applied event time (``max_ts`` in
Redis, what ``cs_latest_event_timestamp_seconds`` takes the largest of per
topic); an event sent at p to partition P (the producer's murmur2 of its
key) is visible at the first read in which P's time covers its stamp, and
its freshness is that read's end minus p. Judged per partition, a partition
that trails the others does not hide behind them. Reading the whole of
``/metrics`` that often would itself load the worker and Redis (a scrape
reads every window), so a real scrape runs every ``--scrape`` seconds (5),
for the consumer lag and the scrape's own cost.

Every ``--sample`` seconds it records the worker's RSS (VmRSS, Linux), Redis
``used_memory`` and the consumer lag; the report gives them over time, and
the targets: p99 freshness <= 2 s at half the maximum rate (take the
maximum from ``bench.throughput``), RSS within 10 % after warm-up.

Events are a pool of generated ones (``--pool``) replayed in a loop; each
replay gets its own event ids (a suffix), so nothing is a duplicate, and leaves
out the events that name a plan (:class:`Replay`).

Usage: ``python -m bench.steady --rate 20000 --minutes 10``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import re
import signal
import statistics
import sys
import time
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
import redis
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from aggregators import keys
from bench.throughput import (
    Child,
    CpuMeter,
    Services,
    cspulse_child,
    generate,
    running,
    say,
    services_on_loopback,
)
from streams.config import FAMILY_TOPICS, Settings
from streams.demo.world import Message
from streams.retry import RetryPolicy, on_types, retry_sync
from streams.topics import create_topics

TICK = 0.01
"""Seconds between sends: events due in a tick go out together, stamped alike."""

TOPICS = tuple(FAMILY_TOPICS)


def lanes(prefix: str, partitions: int) -> list[str]:
    """Each topic-partition's name, ``<topic>[<p>]``, in the order of ``Sent.counts``."""
    return [f"{prefix}{topic}[{p}]" for topic in TOPICS for p in range(partitions)]


def lane_of(template: Template, partitions: int) -> int:
    """The index in :func:`lanes` of the partition the producer's default partitioner
    (murmur2 of the key, as Kafka's Java client) sends a template's events to."""
    return template.topic * partitions + (murmur2(template.key) & 0x7FFFFFFF) % partitions


# ------------------------------------------------------------------ events


RENEWED_IDS = (b'"id":"', b'"session_id":"', b'"ticket_id":"')
"""Ids that get a new suffix in every replay of the pool: the event id, so nothing is a
duplicate, and sessions and tickets, so a replay starts new ones instead of stretching
the same few over the whole run (an endless session's state grows with every event)."""


PLAN_NAMING = frozenset({"subscription.started", "subscription.changed", "trial.converted"})
"""The billing events that name an account's plan (events.md), each kept in its plan history."""


@dataclass(frozen=True)
class Template:
    """A generated event cut where ids end and around its time, to restamp cheaply."""

    topic: int
    key: bytes
    parts: tuple[bytes, ...]
    """Text between the slots; a slot is an id's new suffix, or the time (``time_slot``)."""
    time_slot: int
    names_plan: bool = False
    """A plan-naming billing event (events.md): sent in the first pass only (`Replay`)."""

    @classmethod
    def of(cls, message: Message) -> Template:
        value = message.value
        cuts = [value.index(b'"', value.index(k) + len(k)) for k in RENEWED_IDS if k in value]
        time_start = value.index(b'"time":"') + 8
        time_end = value.index(b'"', time_start)
        ends = sorted([*cuts, time_start])
        starts = [0, *(time_end if e == time_start else e for e in ends)]
        parts = tuple(value[a:b] for a, b in zip(starts, [*ends, len(value)], strict=True))
        names_plan = orjson.loads(value)["type"] in PLAN_NAMING
        topic = TOPICS.index(message.topic)
        return cls(topic, message.key, parts, ends.index(time_start), names_plan)

    def render(self, id_suffix: bytes, stamp: bytes) -> bytes:
        out = [self.parts[0]]
        for slot, part in enumerate(self.parts[1:]):
            out += (stamp if slot == self.time_slot else id_suffix, part)
        return b"".join(out)


class Replay:
    """The pool in a loop, each pass with its own id suffix. The first pass is the whole
    pool; later passes leave out the events that name a plan: a real account changes plan
    a few times a year, while a replayed one would add an entry to its plan history every
    pass, and the benchmark would measure ever longer histories the longer it ran."""

    def __init__(self, pool: Sequence[Template]) -> None:
        self.first = list(pool)
        self.again = [t for t in pool if not t.names_plan] or self.first

    def at(self, i: int) -> tuple[Template, int]:
        """The ``i``-th event sent (from 0) and its pass."""
        if i < len(self.first):
            return self.first[i], 0
        i -= len(self.first)
        return self.again[i % len(self.again)], 1 + i // len(self.again)


def stamp_of(t: float) -> tuple[bytes, float]:
    """RFC 3339 UTC with milliseconds, and the Unix time it names (t cut to the ms)."""
    ms = math.floor(t * 1000)
    text = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return text.encode(), ms / 1000


@dataclass
class Sent:
    """What went out in one tick: when, the time it was stamped with, counts per
    topic-partition (:func:`lanes`)."""

    at: float
    stamp: float
    counts: list[int]


async def produce(
    bootstrap: str,
    prefix: str,
    pool: list[Template],
    rate: float,
    seconds: float,
    partitions: int = 1,
) -> list[Sent]:
    """Send ``rate`` events/s for ``seconds``, in ticks, cycling through ``pool``; counts
    per topic-partition (``partitions`` per topic)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
    await producer.start()
    names = [prefix + t for t in TOPICS]
    replay = Replay(pool)
    lanes_of = {id(tpl): lane_of(tpl, partitions) for tpl in pool}
    ticks: list[Sent] = []
    sent, started = 0, time.time()
    try:
        while (now := time.time()) - started < seconds:
            due = int(rate * (now - started)) - sent
            if due > 0:
                stamp, stamp_s = stamp_of(now)
                counts = [0] * (len(TOPICS) * partitions)
                for i in range(sent, sent + due):
                    tpl, replayed = replay.at(i)
                    suffix = b"-%d" % replayed
                    await producer.send(names[tpl.topic], tpl.render(suffix, stamp), key=tpl.key)
                    counts[lanes_of[id(tpl)]] += 1
                ticks.append(Sent(now, stamp_s, counts))
                sent += due
            await asyncio.sleep(max(0.0, started + (len(ticks) + 1) * TICK - time.time()))
        await producer.flush()
    finally:
        await producer.stop()
    return ticks


# ------------------------------------------------------------------ observing


@dataclass
class Scrape:
    """One read of the latest event times (and, from /metrics, lag and scrape cost)."""

    at: float
    latest: dict[str, float]
    lag: float | None
    collect_s: float | None
    batches: tuple[float, float] | None = None
    """The worker's ``cs_batch_seconds`` (sum, count) so far: its time per batch."""
    applied: float | None = None
    """The worker's ``cs_events_total`` so far, summed over its labels."""
    waits: float | None = None
    """The worker's ``cs_plan_waits_total`` so far (batches held for their billing partition)."""


@dataclass
class Sample:
    """Memory at one moment."""

    t: float
    rss_mib: float | None
    redis_mib: float
    lag: float | None
    redis_cpu_s: float | None = None
    """Redis's CPU time (user + sys) so far."""


_LATEST = re.compile(r'^cs_latest_event_timestamp_seconds\{topic="([^"]+)"\} (\S+)$', re.M)
_LAG = re.compile(r"^cs_consumer_lag_messages\{[^}]*\} (\S+)$", re.M)
_COLLECT = re.compile(r"^cs_collect_duration_seconds (\S+)$", re.M)
_BATCH_SUM = re.compile(r"^cs_batch_seconds_sum (\S+)$", re.M)
_BATCH_COUNT = re.compile(r"^cs_batch_seconds_count (\S+)$", re.M)
_APPLIED = re.compile(r"^cs_events_total\{[^}]*\} (\S+)$", re.M)
_WAITS = re.compile(r"^cs_plan_waits_total\{[^}]*\} (\S+)$", re.M)


def scrape(port: int) -> Scrape | None:
    """Read /metrics once; None while the worker does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    latest = {topic: float(v) for topic, v in _LATEST.findall(text)}
    lags = [float(v) for v in _LAG.findall(text)]
    collect = _COLLECT.search(text)
    total, count = _BATCH_SUM.search(text), _BATCH_COUNT.search(text)
    return Scrape(
        time.time(),
        latest,
        sum(lags) if lags else None,
        float(collect[1]) if collect else None,
        (float(total[1]), float(count[1])) if total and count else None,
        sum(float(v) for v in _APPLIED.findall(text)),
        sum(float(v) for v in _WAITS.findall(text)),
    )


def latest_in_redis(client: redis.Redis) -> Scrape:
    """Each partition's latest applied event time, ``<topic>[<p>]``, read from Redis as a
    scrape reads it (the gauge is their largest per topic)."""
    tags = [keys.text(t) for t in client.hkeys(keys.REGISTRY)]
    pipe = client.pipeline(transaction=False)
    for tag in tags:
        pipe.hget(keys.meta(tag), "max_ts")
    latest: dict[str, float] = {}
    for tag, raw in zip(tags, pipe.execute() if tags else [], strict=True):
        if raw is not None:
            topic, partition = tag[1:-1].rsplit(":", 1)
            latest[f"{topic}[{partition}]"] = float(raw)
    return Scrape(time.time(), latest, None, None)


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process (VmRSS), MiB; None where /proc is not there."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(found[1]) / 1024 if found else None


@dataclass
class Observer:
    """In the background: latest event times every ``poll`` s, a /metrics scrape every
    ``scrape_every`` s, memory every ``every`` s."""

    port: int
    pid: int
    client: redis.Redis
    poll: float
    scrape_every: float
    every: float
    probes: list[Scrape] = field(default_factory=list)
    scrapes: list[Scrape] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        next_scrape = next_sample = time.time()
        while not stop.is_set():
            started = time.time()
            self.probes.append(await asyncio.to_thread(latest_in_redis, self.client))
            if started >= next_scrape:
                next_scrape += self.scrape_every
                seen = await asyncio.to_thread(scrape, self.port)
                if seen is not None:
                    self.scrapes.append(seen)
            if started >= next_sample:
                next_sample += self.every
                await asyncio.to_thread(self.sample, started)
            await asyncio.sleep(max(0.0, started + self.poll - time.time()))

    def sample(self, at: float) -> None:
        used = self.client.info("memory")["used_memory"] / 2**20
        cpu = self.client.info("cpu")
        lag = self.scrapes[-1].lag if self.scrapes else None
        redis_cpu = float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
        self.samples.append(Sample(at, rss_mib(self.pid), used, lag, redis_cpu))


# ------------------------------------------------------------------ freshness


def freshness(
    ticks: Sequence[Sent], scrapes: Sequence[Scrape], names: Sequence[str]
) -> list[tuple[float, float, int]]:
    """(send time, seconds until visible, events) per tick and lane; inf if never seen.

    ``names[i]`` is the lane ``Sent.counts[i]`` counts and ``Scrape.latest`` is keyed
    by. Both lists are in time order, so one pass per lane pairs every tick with the
    first scrape, ended after the send, whose latest event time covers its stamp."""
    out: list[tuple[float, float, int]] = []
    for index, name in enumerate(names):
        shown, best = [], -math.inf
        for seen in scrapes:  # the gauge never goes back; keep it monotonic anyway
            best = max(best, seen.latest.get(name, -math.inf))
            shown.append((seen.at, best))
        i = 0
        for tick in ticks:
            n = tick.counts[index]
            if not n:
                continue
            while i < len(shown) and (shown[i][1] < tick.stamp or shown[i][0] < tick.at):
                i += 1
            wait = shown[i][0] - tick.at if i < len(shown) else math.inf
            out.append((tick.at, wait, n))
    return out


def percentile(points: Sequence[tuple[float, float, int]], q: float) -> float:
    """Weighted percentile (by events) of the seconds until visible."""
    ordered = sorted((wait, n) for _, wait, n in points)
    total = sum(n for _, n in ordered)
    if not total:
        return math.nan
    rank, acc = q * total, 0
    for wait, n in ordered:
        acc += n
        if acc >= rank:
            return wait
    return ordered[-1][0]


# ------------------------------------------------------------------ report


@dataclass
class Result:
    rate: float
    seconds: float
    produced: int
    achieved_rate: float
    warmup_s: float
    p50_s: float
    p99_s: float
    max_s: float
    rss_min_mib: float | None
    rss_max_mib: float | None
    rss_spread: float | None
    redis_start_mib: float
    redis_end_mib: float
    worker_cpu_us: float | None
    redis_cpu_us: float | None
    broker_cpu_us: float | None
    producer_cpu_us: float | None
    """This process: the producer, and the reads of the latest event times."""
    scrape_ms: float | None
    unseen: int
    """Events not visible when the drain ended: the worker fell behind the rate."""
    minutes: list[dict[str, float | None]]


def summarize(
    args: argparse.Namespace,
    ticks: list[Sent],
    observer: Observer,
    cpu: Sequence[float | None],
) -> Result:
    started = ticks[0].at if ticks else time.time()
    produced = sum(sum(t.counts) for t in ticks)
    seconds = (ticks[-1].at - started) if len(ticks) > 1 else 0.0
    warm = started + args.warmup
    points = freshness(ticks, observer.probes, lanes(args.prefix, args.partitions))
    steady = [p for p in points if p[0] >= warm] or points
    rss = [s.rss_mib for s in observer.samples if s.t >= warm and s.rss_mib is not None]
    redis_mib = [s.redis_mib for s in observer.samples] or [math.nan]
    collect = [s.collect_s for s in observer.scrapes if s.collect_s is not None]
    per_event = [c / produced * 1e6 if c is not None and produced else None for c in cpu]
    worker_cpu, redis_cpu, broker_cpu, own_cpu = per_event
    return Result(
        args.rate,
        seconds,
        produced,
        produced / seconds if seconds else math.nan,
        args.warmup,
        percentile(steady, 0.5),
        percentile(steady, 0.99),
        max((w for _, w, _ in steady), default=math.nan),
        min(rss) if rss else None,
        max(rss) if rss else None,
        (max(rss) - min(rss)) / min(rss) if rss else None,
        redis_mib[0],
        redis_mib[-1],
        worker_cpu,
        redis_cpu,
        broker_cpu,
        own_cpu,
        statistics.median(collect) * 1000 if collect else None,
        sum(n for _, wait, n in points if math.isinf(wait)),
        by_minute(started, points, observer.samples, observer.scrapes),
    )


def by_minute(
    started: float,
    points: list[tuple[float, float, int]],
    samples: list[Sample],
    scrapes: Sequence[Scrape] = (),
) -> list[dict[str, float | None]]:
    """Per minute of the run: freshness of the events sent in it, memory at its end, the
    worker's mean time per batch and the median scrape cost in it."""
    rows: list[dict[str, float | None]] = []
    last = max([p[0] for p in points] + [s.t for s in samples], default=started)
    for minute in range(int((last - started) // 60) + 1):
        low, high = started + 60 * minute, started + 60 * (minute + 1)
        sent = [p for p in points if low <= p[0] < high]
        inside = [s for s in samples if low <= s.t < high]
        end = inside[-1] if inside else None
        rows.append(
            {
                "minute": minute + 1,
                "p50_s": percentile(sent, 0.5),
                "p99_s": percentile(sent, 0.99),
                "rss_mib": end.rss_mib if end else None,
                "redis_mib": end.redis_mib if end else None,
                "lag": end.lag if end else None,
                **_scrapes_in([x for x in scrapes if low <= x.at < high]),
                "redis_us": _redis_us(inside, [x for x in scrapes if low <= x.at < high]),
            }
        )
    return rows


def _redis_us(samples: Sequence[Sample], scrapes: Sequence[Scrape]) -> float | None:
    """Redis CPU µs per event applied over a minute: does each event cost Redis more as
    the state grows?"""
    cpu = [s.redis_cpu_s for s in samples if s.redis_cpu_s is not None]
    applied = [x.applied for x in scrapes if x.applied is not None]
    if len(cpu) < 2 or len(applied) < 2 or applied[-1] <= applied[0]:
        return None
    return 1e6 * (cpu[-1] - cpu[0]) / (applied[-1] - applied[0])


def _scrapes_in(scrapes: Sequence[Scrape]) -> dict[str, float | None]:
    """Mean batch ms (from the batch histogram's growth), median scrape ms, plan waits."""
    costs = [x.collect_s * 1000 for x in scrapes if x.collect_s is not None]
    counted = [(x.batches, x.applied) for x in scrapes if x.batches and x.applied is not None]
    waits = [x.waits for x in scrapes if x.waits is not None]
    batch_ms = per_batch = None
    if len(counted) >= 2 and counted[-1][0][1] > counted[0][0][1]:
        (sum0, n0), applied0 = counted[0]
        (sum1, n1), applied1 = counted[-1]
        batch_ms = 1000 * (sum1 - sum0) / (n1 - n0)
        per_batch = (applied1 - applied0) / (n1 - n0)
    return {
        "batch_ms": batch_ms,
        "per_batch": per_batch,
        "scrape_ms": statistics.median(costs) if costs else None,
        "plan_waits": waits[-1] - waits[0] if len(waits) >= 2 else None,
    }


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None or math.isnan(value) else format(value, spec)


def report(result: Result) -> str:
    verdict_fresh = "meets" if result.p99_s <= 2 else "misses"
    spread = result.rss_spread
    verdict_rss = "-" if spread is None else ("meets" if spread <= 0.10 else "misses")
    lines = [
        f"asked {result.rate:,.0f} events/s for {result.seconds:.0f} s: produced "
        f"{result.produced:,} ({result.achieved_rate:,.0f}/s)",
        f"freshness after {result.warmup_s:.0f} s of warm-up (produced -> visible in /metrics): "
        f"p50 {fmt(result.p50_s)} s, p99 {fmt(result.p99_s)} s, max {fmt(result.max_s)} s "
        f"({verdict_fresh} the p99 <= 2 s target)",
        f"worker RSS after warm-up: {fmt(result.rss_min_mib, '.1f')} - "
        f"{fmt(result.rss_max_mib, '.1f')} MiB, spread "
        f"{fmt(spread * 100 if spread is not None else None, '.1f')} % "
        f"({verdict_rss} the 10 % target)",
        f"Redis used_memory: {result.redis_start_mib:.1f} -> {result.redis_end_mib:.1f} MiB",
        f"CPU µs/event: worker {fmt(result.worker_cpu_us, '.1f')}, "
        f"Redis {fmt(result.redis_cpu_us, '.1f')}, broker {fmt(result.broker_cpu_us, '.1f')}, "
        f"this benchmark (producer) {fmt(result.producer_cpu_us, '.1f')}; /metrics scrape (median "
        f"cs_collect_duration_seconds): {fmt(result.scrape_ms, '.1f')} ms",
        *(
            [
                f"WARNING: {result.unseen:,} events were still not visible when the drain ended: "
                "the worker did not keep up with this rate. Freshness counts them as never "
                "visible, and CPU µs/event divides by events produced, not applied."
            ]
            if result.unseen
            else []
        ),
        "",
        "| minute | freshness p50 s | p99 s | worker RSS MiB | Redis used_memory MiB | lag "
        "| batch ms | events/batch | Redis µs/event | scrape ms | plan waits |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result.minutes:
        lines.append(
            f"| {row['minute']:.0f} | {fmt(row['p50_s'])} | {fmt(row['p99_s'])} | "
            f"{fmt(row['rss_mib'], '.1f')} | {fmt(row['redis_mib'], '.1f')} | "
            f"{fmt(row['lag'], ',.0f')} | {fmt(row.get('batch_ms'), '.1f')} | "
            f"{fmt(row.get('per_batch'), ',.0f')} | {fmt(row.get('redis_us'), '.1f')} | "
            f"{fmt(row.get('scrape_ms'), '.0f')} | {fmt(row.get('plan_waits'), ',.0f')} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------ main


def pool_of(args: argparse.Namespace) -> list[Template]:
    messages = generate(args.pool, args.accounts, args.seed)
    return [Template.of(m) for m in messages]


def wait_ready(port: int, child: Child, timeout: float = 120) -> None:
    """Until the worker's /readyz says it holds partitions and Redis answers."""

    def ready() -> None:
        child.check()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5):
            pass  # 503 (not ready) raises HTTPError, an OSError

    policy = RetryPolicy(0.5, factor=1.0, ceiling=0.5, deadline=timeout, log_level=logging.DEBUG)
    try:
        retry_sync(ready, policy, on_types(OSError), "the worker's /readyz")
    except OSError:
        raise TimeoutError(
            f"the worker was not ready after {timeout:.0f} s:\n{child.tail()}"
        ) from None


async def steady_run(
    args: argparse.Namespace, services: Services, prefix: str, pool: list[Template], child: Child
) -> tuple[list[Sent], Observer, list[float | None]]:
    port = int(child.env["CSPULSE_METRICS_PORT"])
    client = redis.Redis.from_url(services.redis_url, socket_timeout=30)
    observer = Observer(port, child.pid, client, args.poll, args.scrape, args.sample)
    meter = CpuMeter((child.pid, services.redis.proc.pid, services.broker.proc.pid, None))
    stop = asyncio.Event()
    watching = asyncio.create_task(observer.run(stop))
    meter.mark()
    ticks = await produce(
        services.bootstrap, prefix, pool, args.rate, args.minutes * 60, args.partitions
    )
    say(f"  produced for {args.minutes} min; waiting for the last events to show")
    last = last_stamps(ticks, lanes(prefix, args.partitions))
    deadline = time.time() + args.drain
    while time.time() < deadline and not all_seen(observer, last):
        child.check()
        await asyncio.sleep(args.poll)
    cpu = meter.used()
    stop.set()
    await watching
    return ticks, observer, cpu


def last_stamps(ticks: Sequence[Sent], names: Sequence[str]) -> dict[str, float]:
    """Per lane, the stamp of the last events sent to it."""
    last: dict[str, float] = {}
    for tick in ticks:
        for index, n in enumerate(tick.counts):
            if n:
                last[names[index]] = tick.stamp
    return last


def all_seen(observer: Observer, last: dict[str, float]) -> bool:
    """Whether the latest read shows every lane up to the last events sent to it."""
    latest = observer.probes[-1].latest if observer.probes else {}
    return all(latest.get(topic, -math.inf) >= stamp for topic, stamp in last.items())


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.steady", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rate", type=float, default=20_000, help="events per second to send")
    parser.add_argument("--minutes", type=float, default=10, help="how long to send")
    parser.add_argument("--warmup", type=float, default=60, help="seconds left out of targets")
    parser.add_argument(
        "--poll", type=float, default=0.05, help="seconds between reads of the latest event times"
    )
    parser.add_argument("--scrape", type=float, default=5, help="seconds between /metrics scrapes")
    parser.add_argument("--sample", type=float, default=5, help="seconds between memory samples")
    parser.add_argument("--drain", type=float, default=60, help="seconds to wait for the tail")
    parser.add_argument("--pool", type=int, default=100_000, help="generated events replayed")
    parser.add_argument("--accounts", type=int, default=200, help="accounts the generator uses")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic")
    parser.add_argument("--seed", type=int, default=1, help="generator seed")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    if min(args.rate, args.minutes, args.poll, args.scrape, args.sample) <= 0:
        parser.error("--rate, --minutes, --poll, --scrape and --sample must be > 0")
    args.warmup = min(args.warmup, args.minutes * 60 / 2)
    return args


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so every child is stopped."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    say(
        f"steady benchmark: {args.rate:,.0f} events/s for {args.minutes} min; "
        f"nproc {os.cpu_count()}, Python {sys.version.split()[0]}"
    )
    pool = pool_of(args)
    with services_on_loopback() as services:
        prefix = args.prefix = f"steady{uuid.uuid4().hex[:8]}."
        settings = Settings.model_validate({"topic_prefix": prefix, "partitions": args.partitions})
        asyncio.run(create_topics(settings, services.bootstrap, args.partitions))
        child, port = cspulse_child(services, prefix, "steady", clock="wall")
        with running(child):
            wait_ready(port, child)
            say(f"  worker ready; sending {args.rate:,.0f} events/s")
            ticks, observer, cpu = asyncio.run(steady_run(args, services, prefix, pool, child))
    result = summarize(args, ticks, observer, cpu)
    print(report(result))
    if args.json:
        data = {"result": asdict(result), "samples": [asdict(s) for s in observer.samples]}
        args.json.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
