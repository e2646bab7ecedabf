"""The broker's own freshness at a steady rate: no cspulse, a plain ``getmany`` consumer.

Why: ``bench.steady`` measures produced -> visible in ``/metrics``, which
includes the broker's produce-to-fetch delay. This sends the same stream at
the same rate to the same embedded broker and measures produced -> fetched
by a bare aiokafka consumer, per minute, with the broker's CPU per event, so
that the two runs side by side show which part of the freshness is cspulse's.

Usage: ``python -m bench.broker_latency --rate 6000 --minutes 5``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections.abc import Sequence
from datetime import datetime

from aiokafka import AIOKafkaConsumer

from bench.steady import TOPICS, pool_of, produce
from bench.throughput import cpu_seconds, services_on_loopback
from streams.config import Settings
from streams.topics import create_topics

PREFIX = "brokerlat."
TIME_FIELD = b'"time":"'


def broker_cpu(pid: int) -> float:
    """The broker's CPU seconds so far (0 where /proc cannot tell)."""
    return cpu_seconds(pid) or 0.0


def stamp_in(value: bytes) -> float:
    """The event time the producer stamped (its send time), from the raw JSON."""
    start = value.index(TIME_FIELD) + len(TIME_FIELD)
    return datetime.fromisoformat(value[start : value.index(b'"', start)].decode()).timestamp()


async def consume(bootstrap: str, delays: list[tuple[float, float]], stop: asyncio.Event) -> None:
    """Fetch every topic from the start; record (when fetched, fetched - stamped)."""
    consumer = AIOKafkaConsumer(
        *(PREFIX + t for t in TOPICS),
        bootstrap_servers=bootstrap,
        group_id="broker-latency",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            now = time.time()
            delays += [(now, now - stamp_in(r.value)) for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()


def percentile(sorted_values: Sequence[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def run(args: argparse.Namespace) -> list[str]:
    pool = pool_of(args)
    with services_on_loopback() as services:
        settings = Settings.model_validate({"topic_prefix": PREFIX, "partitions": 4})
        await create_topics(settings, services.bootstrap, 4)
        delays: list[tuple[float, float]] = []
        stop = asyncio.Event()
        consuming = asyncio.create_task(consume(services.bootstrap, delays, stop))
        await asyncio.sleep(3)  # joined and fetching
        pid, started = services.broker.proc.pid, time.time()
        marks = [(started, broker_cpu(pid))]

        async def mark_minutes() -> None:
            while True:
                await asyncio.sleep(60)
                marks.append((time.time(), broker_cpu(pid)))

        marking = asyncio.create_task(mark_minutes())
        await produce(services.bootstrap, PREFIX, pool, args.rate, args.minutes * 60)
        await asyncio.sleep(5)
        marking.cancel()
        stop.set()
        await consuming
    return report(delays, marks)


def report(delays: list[tuple[float, float]], marks: list[tuple[float, float]]) -> list[str]:
    lines = [
        "| minute | fetched | produced -> fetched p50 s | p99 s | broker CPU µs/event |",
        "|---:|---:|---:|---:|---:|",
    ]
    for minute, ((t0, c0), (t1, c1)) in enumerate(itertools.pairwise(marks), 1):
        inside = sorted(d for at, d in delays if t0 <= at < t1)
        if inside:
            lines.append(
                f"| {minute} | {len(inside):,} | {percentile(inside, 0.5):.2f} | "
                f"{percentile(inside, 0.99):.2f} | {(c1 - c0) / len(inside) * 1e6:.1f} |"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.broker_latency", description=__doc__)
    parser.add_argument("--rate", type=float, default=6000, help="events per second to send")
    parser.add_argument("--minutes", type=float, default=5, help="how long to send")
    parser.add_argument("--pool", type=int, default=50_000, help="generated events replayed")
    parser.add_argument("--accounts", type=int, default=200, help="accounts the generator uses")
    parser.add_argument("--seed", type=int, default=1, help="generator seed")
    args = parser.parse_args(argv)
    print(f"broker latency: {args.rate:,.0f} events/s for {args.minutes} min, no cspulse")
    print("\n".join(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
