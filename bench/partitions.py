"""A partition batch's fixed cost: every partition's small batch applied together, live.

Why: at a steady rate a worker's batches are small and spread over every
partition it owns, so what a batch costs whatever its size decides the CPU
per event, not the fold. ``bench.hotpath`` replays full batches of a
history; this feeds :class:`~streams.processor.Processor` rounds of the
generator's mixed stream, stamped with the wall time as live traffic is
(wall clock, as deployed), split by topic and partition and applied
concurrently as the worker does, and reports per round size the CPU of this
process per partition batch and per event, and Redis's CPU per event. A
cost of ``a`` per batch and ``b`` per event fit ``batch = a + n b``.

Usage: ``python -m bench.partitions --rounds 16,160,1600,8000 --seconds 8``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from aggregators.clock import clock_named
from bench.hotpath import command_lines
from bench.slowlog import SLOWLOG_LENGTH, ScriptCost, by_script, script_lines, script_names
from bench.steady import TOPICS, Replay, Template, stamp_of
from bench.throughput import CpuMeter, generate
from streams.config import Settings
from streams.demo.embedded import start_redis
from streams.processor import DeadLetter, Processor, RawMessage

PREFIX = "parts."
Job = tuple[str, int, list[RawMessage]]


@dataclass
class Feed:
    """The generator's events in a loop (`Replay`), each pass with new ids, cut into live rounds."""

    replay: Replay
    partitions: int
    sent: int = 0
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    def round(self, size: int) -> list[Job]:
        """The next ``size`` events, stamped now, as one batch per topic-partition."""
        offsets = self.offsets
        stamp, _ = stamp_of(time.time())
        now = time.time()
        by_tp: dict[tuple[str, int], list[RawMessage]] = {}
        for _ in range(size):
            template, replayed = self.replay.at(self.sent)
            suffix = b"-r%d" % replayed
            self.sent += 1
            tp = (PREFIX + TOPICS[template.topic], zlib.crc32(template.key) % self.partitions)
            batch = by_tp.setdefault(tp, [])
            offset = offsets.get(tp, 0) + len(batch)
            batch.append(RawMessage(offset, template.key, template.render(suffix, stamp), now))
        for tp, batch in by_tp.items():
            offsets[tp] = offsets.get(tp, 0) + len(batch)
        return [(topic, partition, batch) for (topic, partition), batch in by_tp.items()]


@dataclass
class Cost:
    size: int
    batches: int
    events: int
    cpu: float
    redis_cpu: float
    commands: dict[str, Any] = field(default_factory=dict)
    """Redis's INFO commandstats over the rounds."""
    scripts: dict[str, ScriptCost] = field(default_factory=dict)
    """Redis's time per script over the rounds (``--scripts``)."""

    def line(self) -> str:
        return (
            f"rounds of {self.size:>6,} events: {self.batches:>6,} partition batches, "
            f"{self.events / self.batches:7.1f} events each; "
            f"CPU {self.cpu / self.batches * 1e3:5.2f} ms/batch, "
            f"{self.cpu / self.events * 1e6:6.1f} µs/event; "
            f"Redis {self.redis_cpu / self.events * 1e6:5.1f} µs/event"
        )


async def measure(
    processor: Processor,
    feed: Feed,
    size: int,
    seconds: float,
    redis_pid: int,
    scripts: bool = False,
) -> Cost:
    """Rounds of ``size`` events for ``seconds``; only the processor's work is timed.
    ``scripts``: log every command meanwhile, for Redis's time per script."""
    cost = Cost(size, 0, 0, 0.0, 0.0)
    redis_meter = CpuMeter((redis_pid,))
    redis = processor.redis
    await redis.config_resetstat()
    if scripts:
        await redis.config_set("slowlog-max-len", SLOWLOG_LENGTH)
        await redis.slowlog_reset()
        await redis.config_set("slowlog-log-slower-than", 0)
    redis_meter.mark()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        jobs = feed.round(size)
        started = time.process_time()
        await asyncio.gather(*(processor.process(t, p, batch) for t, p, batch in jobs))
        cost.cpu += time.process_time() - started
        cost.batches += len(jobs)
        cost.events += sum(len(batch) for _t, _p, batch in jobs)
    (cost.redis_cpu,) = (c or 0.0 for c in redis_meter.used())
    cost.commands = await redis.info("commandstats")
    if scripts:
        await redis.config_set("slowlog-log-slower-than", 10_000)  # Redis's default
        cost.scripts = by_script(await redis.slowlog_get(SLOWLOG_LENGTH), script_names())
    return cost


async def run(args: argparse.Namespace, url: str, redis_pid: int) -> list[Cost]:
    settings = Settings.model_validate({"topic_prefix": PREFIX, "clock": "wall"})

    async def drop(_topic: str, _partition: int, _letters: Sequence[DeadLetter]) -> None:
        return None

    processor = Processor(
        Redis.from_url(url),
        settings.metric_config(),
        drop,
        family_of=settings.family_of,
        clock=clock_named("wall"),
    )
    pool = [Template.of(m) for m in generate(args.pool, 200, args.seed)]
    feed = Feed(Replay(pool), args.partitions)
    await measure(processor, feed, max(args.rounds), 2.0, redis_pid)  # warm-up: scripts, state
    costs = []
    for size in args.rounds:
        cost = await measure(processor, feed, size, args.seconds, redis_pid, args.scripts)
        print(cost.line(), flush=True)
        if args.commands:
            print("\n".join(command_lines(cost.commands, cost.events)), flush=True)
        if args.scripts:
            print("\n".join(script_lines(cost.scripts)), flush=True)
        costs.append(cost)
    return costs


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.partitions", description=__doc__)
    parser.add_argument(
        "--rounds",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[16, 160, 1600, 8000],
        help="events per round, comma-separated (spread over every topic-partition)",
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="time per round size")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic")
    parser.add_argument("--pool", type=int, default=40_000, help="generated events replayed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--commands", action="store_true", help="Redis's time per command, per round size"
    )
    parser.add_argument(
        "--scripts",
        action="store_true",
        help="Redis's time per Lua script, its commands and its own (SLOWLOG: slows Redis)",
    )
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="cspulse-parts-"))
    server = start_redis(workdir)
    try:
        costs = asyncio.run(run(args, f"redis://127.0.0.1:{server.port}/0", server.proc.pid))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if len(costs) >= 2:
        small, large = costs[0], costs[-1]
        per_event = (large.cpu / large.batches - small.cpu / small.batches) / (
            large.events / large.batches - small.events / small.batches
        )
        fixed = small.cpu / small.batches - per_event * small.events / small.batches
        print(f"fit: {fixed * 1e3:.2f} ms per partition batch + {per_event * 1e6:.1f} µs per event")


if __name__ == "__main__":
    main()
