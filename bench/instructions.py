"""Count the instructions the processing core executes: a figure a busy machine does not move.

Why: on a shared machine two runs of ``bench.hotpath`` differ by a third in CPU
time, so a change worth 3 % cannot be seen in seconds. Under valgrind's
callgrind the core's instruction count repeats within a fraction of a percent
from run to run, whatever else the machine does. This feeds
:func:`bench.throughput.replay` the same batches as ``bench.hotpath`` (topics
one after another, so that the work does not depend on timing) and counts only
the replay, not the set-up: callgrind collects inside ``functools.reduce``,
which calls the replay and nothing else.

Usage: ``python -m bench.instructions --events 20000 [--batch 2000]`` (needs
``valgrind``; it re-runs itself under callgrind, about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.hotpath import PREFIX, batches
from bench.throughput import replay
from streams.demo.embedded import start_redis

TOGGLE = "functools_reduce"
"""The C function callgrind collects inside: what :func:`_replay_once` runs in."""


def _replay_once(events: int, partitions: int, size: int, seed: int) -> None:
    """Start a Redis, build the batches, then apply them inside ``functools.reduce``."""
    workdir = Path(tempfile.mkdtemp(prefix="cspulse-ins-"))
    server = start_redis(workdir)
    try:
        plan = batches(events, partitions, size, seed)
        url = f"redis://127.0.0.1:{server.port}/0"
        run = functools.partial(replay, url, PREFIX, plan, True)
        functools.reduce(lambda _acc, _item: asyncio.run(run()), [None], 0)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def count(events: int, partitions: int, size: int, seed: int) -> int:
    """The instructions of one replay under callgrind (hash seed fixed: sets iterate alike)."""
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind (Debian)")
    with tempfile.TemporaryDirectory(prefix="cspulse-ins-") as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--collect-atstart=no",
            f"--toggle-collect={TOGGLE}",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "bench.instructions",
            "--inside",
            *("--events", str(events), "--partitions", str(partitions)),
            *("--batch", str(size), "--seed", str(seed)),
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(command, check=True, env=env, stderr=subprocess.DEVNULL)
        return _total(out.read_text())


def _total(report: str) -> int:
    """The ``summary:`` (or ``totals:``) line of a callgrind output file."""
    found = re.search(r"^(?:summary|totals): (\d+)", report, re.MULTILINE)
    if found is None:
        raise SystemExit("callgrind wrote no totals: did the replay run?")
    return int(found.group(1))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=2000, help="events per batch")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        _replay_once(args.events, args.partitions, args.batch, args.seed)
        return
    total = count(args.events, args.partitions, args.batch, args.seed)
    print(
        f"{args.events:,} events, batches of {args.batch}: {total:,} instructions, "
        f"{total / args.events:,.0f} per event"
    )


if __name__ == "__main__":
    main()
