"""Profile the processing core without Kafka: CPU per event, where it goes, what it wrote.

Why: the throughput benchmark says how fast the core is; this says why. It
feeds :class:`~streams.processor.Processor` the generator's mixed stream in
full per-partition batches (partitions taken in turn, as the worker does),
against a Redis it starts, and reports this process's and Redis's CPU per
event, optionally a cProfile of the run, and a digest of everything left in
Redis, so that a faster core can be shown to write exactly the same state.

Usage: ``python -m bench.hotpath --events 150000 [--profile out.prof] [--dump out.txt]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import pstats
import shutil
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from bench.throughput import CpuMeter, _interleave, event_ms, generate, replay
from streams.config import Settings
from streams.demo.embedded import start_redis
from streams.processor import RawMessage

PREFIX = "hot."
Batches = list[tuple[int, list[RawMessage]]]


def batches(events: int, partitions: int, size: int, seed: int) -> dict[str, Batches]:
    """Per topic, full batches of each partition (partition: CRC of the key), in turn."""
    by_tp: defaultdict[tuple[str, int], list[RawMessage]] = defaultdict(list)
    for message in generate(events, 200, seed):
        tp = (PREFIX + message.topic, zlib.crc32(message.key) % partitions)
        stamp = event_ms(message) / 1000  # as the worker gets it: the record's timestamp
        by_tp[tp].append(RawMessage(len(by_tp[tp]), message.key, message.value, stamp))
    chunks: defaultdict[str, list[Batches]] = defaultdict(list)
    for (topic, partition), msgs in sorted(by_tp.items()):
        chunks[topic].append([(partition, msgs[i : i + size]) for i in range(0, len(msgs), size)])
    return {topic: _interleave(lists) for topic, lists in chunks.items()}


def dump(client: redis.Redis) -> list[str]:
    """Every key with its type and value (wall-clock fields left out), sorted."""
    lines = []
    for raw_key in sorted(client.scan_iter(count=1000)):
        key = raw_key.decode()
        kind = client.type(raw_key).decode()
        if key.endswith(":applied_at"):
            continue
        if kind == "string":
            value: object = client.get(raw_key)
        elif kind == "hash":
            fields = client.hgetall(raw_key)
            fields.pop(b"~version", None)
            if key.endswith(":version"):  # versions count from the server's clock
                fields = dict.fromkeys(fields, b"")
            value = sorted(fields.items())
        elif kind == "zset":
            value = client.zrange(raw_key, 0, -1, withscores=True)
        elif kind == "set":
            value = sorted(client.smembers(raw_key))
        else:
            value = kind
        expires = client.ttl(raw_key) >= 0
        lines.append(f"{key} {kind} {'ttl' if expires else 'keep'} {value!r}")
    return lines


def command_costs(client: redis.Redis, events: int, top: int = 12) -> list[str]:
    """Redis's own account of its time (scripts and the commands they call), per event."""
    return command_lines(client.info("commandstats"), events, top)


def command_lines(stats: dict[str, Any], events: int, top: int = 12) -> list[str]:
    """The ``top`` commands of an INFO commandstats by time: calls and µs per event."""
    rows = sorted(stats.items(), key=lambda kv: -kv[1]["usec"])[:top]
    return [
        f"  {name.removeprefix('cmdstat_'):<22} calls/event {v['calls'] / events:8.3f}  "
        f"µs/event {v['usec'] / events:6.2f}"
        for name, v in rows
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath", description=__doc__)
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--batch", type=int, help="events per batch (default: the worker's CSPULSE_BATCH_MAX)"
    )
    parser.add_argument("--profile", type=Path, help="write a cProfile of the run here")
    parser.add_argument("--dump", type=Path, help="write Redis's final state here")
    parser.add_argument(
        "--sequential", action="store_true", help="one topic after another (comparable dumps)"
    )
    parser.add_argument(
        "--per-partition",
        action="store_true",
        help="one agent per topic-partition instead of per topic (billing's first)",
    )
    args = parser.parse_args(argv)
    size = args.batch or Settings.model_validate({}).batch_max
    workdir = Path(tempfile.mkdtemp(prefix="cspulse-hot-"))
    server = start_redis(workdir)
    try:
        plan = batches(args.events, args.partitions, size, args.seed)
        url = f"redis://127.0.0.1:{server.port}/0"
        meter = CpuMeter((None, server.proc.pid))
        profiler = cProfile.Profile() if args.profile else None
        meter.mark()
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        letters = asyncio.run(replay(url, PREFIX, plan, args.sequential, args.per_partition))
        if profiler:
            profiler.disable()
        elapsed = time.perf_counter() - started
        core, redis_cpu = (c or 0.0 for c in meter.used())
        n = args.events
        print(
            f"{n:,} events in {elapsed:.2f}s ({n / elapsed:,.0f}/s), {letters} dead letters; "
            f"CPU µs/event: core {core / n * 1e6:.1f}, Redis {redis_cpu / n * 1e6:.1f}"
        )
        client = redis.Redis.from_url(url)
        for line in command_costs(client, n):
            print(line)
        if profiler and args.profile:
            profiler.dump_stats(args.profile)
            pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(25)
        if args.dump:
            lines = dump(redis.Redis.from_url(url))
            args.dump.write_text("\n".join(lines) + "\n")
            digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
            print(f"{len(lines):,} keys, state digest {digest}", file=sys.stderr)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
