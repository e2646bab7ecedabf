"""Does the processor keep memory as it goes? Live allocations after a warm-up.

Why: the steady benchmark sees the worker's RSS rise for minutes. This
replays generated batches through :class:`~streams.processor.Processor`
against a Redis it starts (no Kafka, no HTTP), starts ``tracemalloc`` after
the first quarter of the batches, and reports the allocations still alive
at the half and at the end. A processor that keeps nothing per event shows
the same small figure at both.

Usage: ``python -m bench.memory --events 400000``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import shutil
import tempfile
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

from bench.hotpath import PREFIX, batches
from bench.throughput import replay_processor
from streams.config import Settings
from streams.demo.embedded import start_redis
from streams.processor import DeadLetter, RawMessage

Step = tuple[str, int, list[RawMessage]]


def in_turn(plan: dict[str, list[tuple[int, list[RawMessage]]]]) -> list[Step]:
    """Every topic's batches, the topics taken in turn."""
    rounds = itertools.zip_longest(*(((t, *b) for b in bs) for t, bs in plan.items()))
    return [step for round_ in rounds for step in round_ if step is not None]


async def live_bytes(redis_url: str, steps: list[Step]) -> list[tuple[int, int]]:
    """(batches done, bytes alive) at the half and at the end, traced from the quarter."""

    async def drop(_topic: str, _partition: int, _letters: Sequence[DeadLetter]) -> None:
        return None

    processor = replay_processor(redis_url, PREFIX, drop)
    quarter, out = len(steps) // 4, []
    for done, (topic, partition, messages) in enumerate(steps, 1):
        await processor.process(topic, partition, messages)
        steps[done - 1] = ("", 0, [])  # the input is not what is measured
        if done == quarter:
            gc.collect()
            tracemalloc.start()
        elif done in (2 * quarter, len(steps)):
            gc.collect()
            out.append((done, tracemalloc.get_traced_memory()[0]))
    tracemalloc.stop()
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    steps = in_turn(batches(args.events, 4, Settings.model_validate({}).batch_max, args.seed))
    workdir = Path(tempfile.mkdtemp(prefix="cspulse-memory-"))
    server = start_redis(workdir)
    try:
        found = asyncio.run(live_bytes(f"redis://127.0.0.1:{server.port}/0", steps))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    quarter = len(steps) // 4
    print(f"{args.events:,} events in {len(steps):,} batches; tracing from batch {quarter:,}")
    for done, alive in found:
        print(f"  after batch {done:,}: {alive / 1024:,.1f} KiB allocated since and still alive")


if __name__ == "__main__":
    main()
