"""Events per second of the cspulse worker next to Quix Streams, Faust and raw aiokafka.

Why ratios: absolute events/s on a small, possibly shared machine move from
run to run; running the variants side by side against the same broker, the
same Redis and the same pre-published events, alternating them and taking
medians, makes the ratios the figures worth quoting.

Variants (``--variants``):

``cspulse``  the worker as shipped: ``python -m streams worker``.
``cspulse2`` the same with ``--processes 2`` (``CSPULSE_PROCESSES=2``): two consumers of
             the group on one host; its CPU is summed over the worker's process group.
``cspulse-base`` the worker of another checkout (``--baseline DIR``, e.g. a
             ``git worktree`` of an earlier commit), same environment: a change measured
             side by side, as a ratio.
``quix``     :mod:`bench.quix_app`: Quix Streams, JSON decode and a tumbling-window
             count per account, Quix defaults; windows by the record timestamp
             (which this benchmark sets to the event time).
``quix-et``  the same app with windows by the payload's event time, through a
             ``timestamp_extractor`` parsing the CloudEvents ``time`` field.
``faust``    :mod:`bench.plain_faust`: a plain Faust agent per topic, one Redis
             ``HINCRBY`` per event, Faust defaults.
``aiokafka`` :mod:`bench.raw_client`: aiokafka ``getmany`` and ``json.loads``, no
             other work: the client's ceiling.
``core``     :class:`~streams.processor.Processor` called in this process on
             full batches, no Kafka at all: the ceiling of the processing itself.

The events are published before any consumer starts, so the consumers are
measured on pure consumption: from the first progress seen in Redis to all
events consumed. Wall time from process start (connecting, joining the group)
is reported separately. Everything runs on loopback, on a broker and a Redis
this script starts, and every process it starts is stopped before it exits.

Usage: ``python -m bench.throughput --events 300000 --repeat 3``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
import redis
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis as AsyncRedis

from aggregators.clock import clock_named
from bench.raw_client import PROGRESS
from streams.config import Settings
from streams.demo.embedded import Process, free_port, spawn, start_broker, start_redis
from streams.demo.world import EventGenerator, GeneratorConfig, Message
from streams.processor import DeadLetter, DeadLetterSink, Processor, RawMessage
from streams.topics import create_topics

ROOT = Path(__file__).resolve().parent.parent
START = 1_704_067_200.0
"""Event time of the generated world (2024-01-01 UTC): fixed, so every run
replays the same bytes, and in the past, so no event is rejected as future."""

POLL = 0.02
"""Seconds between progress polls: small next to a run, cheap for Redis."""

TP = tuple[str, int]

PLAIN_FAUST_COUNTERS = "bench:plain:counts"
"""Hash the plain Faust baseline counts into (:mod:`bench.plain_faust`); named here so the
benchmark reads it without importing Faust."""

VARIANTS = ("cspulse", "cspulse2", "cspulse-base", "quix", "quix-et", "faust", "aiokafka", "core")
WORKER_PROCESSES = {"cspulse": 1, "cspulse2": 2, "cspulse-base": 1}
"""The cspulse worker variants and their ``--processes``."""
BASELINES = ("cspulse-base", "quix", "quix-et", "faust", "aiokafka")
"""Every variant's events/s is given as a ratio to each of these."""


@dataclass(frozen=True)
class Workload:
    """Events as published: where each landed, so offsets and batches can be rebuilt."""

    prefix: str
    placed: list[tuple[TP, RawMessage]]
    first: dict[TP, int]
    last: dict[TP, int]

    @property
    def count(self) -> int:
        return len(self.placed)


@dataclass(frozen=True)
class Timing:
    """One measured run; ``rate`` counts only events applied after the first progress."""

    variant: str
    rate: float
    consume_s: float
    total_s: float
    startup_s: float
    batch: float | None = None
    cpu_us: float | None = None
    """CPU time of the consumer (all threads) per event while consuming: less sensitive
    than events/s to other load on the machine, since waiting for a core costs none."""
    redis_cpu_us: float | None = None
    broker_cpu_us: float | None = None


@dataclass
class Services:
    """The broker and Redis this benchmark owns, shared by every run so runs compare."""

    broker: Process
    redis: Process
    workdir: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker.port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis.port}/0"


def say(text: str) -> None:
    """Progress goes to stderr, unbuffered, so a long run shows it is alive."""
    print(text, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ workload


def generate(events: int, accounts: int, seed: int) -> list[Message]:
    """The generator's bootstrap hour followed by its stream: ``events`` messages in all."""
    gen = EventGenerator(GeneratorConfig(accounts=accounts, seed=seed), START)
    head = gen.bootstrap()[:events]
    return head + list(gen.stream(events - len(head)))


def event_ms(message: Message) -> int:
    """The event time of a generated message in ms, set as its Kafka timestamp so
    that consumers that window by record timestamp (Quix) window by event time."""
    stamp: str = orjson.loads(message.value)["time"]
    return round(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


async def _publish(bootstrap: str, prefix: str, messages: Sequence[Message]) -> Workload:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks="all"
    )
    await producer.start()
    try:
        futures = [
            await producer.send(prefix + m.topic, m.value, key=m.key, timestamp_ms=event_ms(m))
            for m in messages
        ]
        records = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    placed = [
        ((r.topic, r.partition), RawMessage(r.offset, m.key, m.value, r.timestamp / 1000))
        for r, m in zip(records, messages, strict=True)
    ]
    first: dict[TP, int] = {}
    last: dict[TP, int] = {}
    for tp, msg in placed:
        first[tp] = min(first.get(tp, msg.offset), msg.offset)
        last[tp] = max(last.get(tp, msg.offset), msg.offset)
    return Workload(prefix, placed, first, last)


def publish(services: Services, args: argparse.Namespace) -> Workload:
    """Create fresh topics and publish the events once; every run reads these same topics."""
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    messages = generate(args.events, args.accounts, args.seed)
    settings = Settings.model_validate({"topic_prefix": prefix, "partitions": args.partitions})
    asyncio.run(create_topics(settings, services.bootstrap, args.partitions))
    started = time.perf_counter()
    workload = asyncio.run(_publish(services.bootstrap, prefix, messages))
    elapsed = time.perf_counter() - started
    say(
        f"published {workload.count:,} events to {len(workload.last)} partitions "
        f"in {elapsed:.1f}s ({workload.count / elapsed:,.0f}/s)"
    )
    return workload


# ------------------------------------------------------------------ progress


def applied_events(client: redis.Redis, workload: Workload) -> int:
    """Events cspulse has applied: per partition, its applied offset in Redis minus the first."""
    tps = list(workload.last)
    pipe = client.pipeline(transaction=False)
    for topic, partition in tps:
        pipe.hget(f"cs:{{{topic}:{partition}}}:meta", "offset")
    done = 0
    for tp, raw in zip(tps, pipe.execute(), strict=True):
        if raw is not None:
            done += int(raw) - workload.first[tp] + 1
    return done


Progress = Callable[[redis.Redis, "Workload"], int]
"""Events a variant has finished, read from Redis."""


def counted_events(client: redis.Redis, _workload: Workload) -> int:
    """Events the Faust baseline has counted: the sum of its per-type counters."""
    return sum(int(v) for v in client.hvals(PLAIN_FAUST_COUNTERS))


def reported_events(client: redis.Redis, _workload: Workload) -> int:
    """Events a comparison client (Quix, raw aiokafka) says it has processed."""
    return int(client.get(PROGRESS) or 0)


# ------------------------------------------------------------------ children


@dataclass
class Child:
    """A benchmarked process in its own session, so stopping it stops all it started."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    cwd: Path = ROOT
    """Where it runs: ``python -m`` imports from here first, before ``PYTHONPATH``."""

    def start(self) -> None:
        self.proc = spawn(self.argv, self.log_path, self.cwd, self.env)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{self.tail()}")

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the process group; SIGKILL it if it has not gone within ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@contextmanager
def running(child: Child) -> Iterator[Child]:
    child.start()
    try:
        yield child
    finally:
        child.stop()


def base_env() -> dict[str, str]:
    """Children import ``bench`` and ``streams`` from this tree and print unbuffered."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cspulse_child(
    services: Services, prefix: str, name: str, clock: str = "watermark", processes: int = 1
) -> tuple[Child, int]:
    """The shipped worker, as an operator starts it; returns it and its metrics port
    (with ``processes`` > 1, process i serves the port + i)."""
    port = free_ports(processes)
    env = base_env() | {
        "CSPULSE_KAFKA_BOOTSTRAP": services.bootstrap,
        "CSPULSE_REDIS_URL": services.redis_url,
        "CSPULSE_METRICS_PORT": str(port),
        "CSPULSE_METRICS_HOST": "127.0.0.1",
        "CSPULSE_TOPIC_PREFIX": prefix,
        "CSPULSE_APP_ID": f"bench-{name}",
        "CSPULSE_CLOCK": clock,
        "CSPULSE_LOG_LEVEL": "warning",
        "CSPULSE_PROCESSES": str(processes),
    }
    argv = [sys.executable, *_profiled(), "-m", "streams", "worker"]
    return Child(name, argv, env, services.workdir / f"{name}.log"), port


def _profiled() -> list[str]:
    """With ``BENCH_PROFILE_WORKER=FILE`` the worker runs under cProfile, which writes FILE
    when the worker stops (the benchmark ends it with SIGTERM, a clean stop)."""
    path = os.environ.get("BENCH_PROFILE_WORKER")
    return ["-m", "cProfile", "-o", path] if path else []


def free_ports(count: int) -> int:
    """A free port p with p + 1 .. p + count - 1 free too (one metrics port per process)."""
    for _ in range(100):
        port = free_port()
        if all(_port_free(port + i) for i in range(1, count)):
            return port
    raise RuntimeError(f"no {count} consecutive free ports on loopback")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def client_env(services: Services, workload: Workload, name: str) -> dict[str, str]:
    """What the comparison apps read: where the broker, Redis and topics are."""
    return base_env() | {
        "BENCH_KAFKA_BOOTSTRAP": services.bootstrap,
        "BENCH_REDIS_URL": services.redis_url,
        "BENCH_TOPIC_PREFIX": workload.prefix,
        "BENCH_APP_ID": f"bench-{name}",
        "BENCH_DATADIR": str(services.workdir / f"{name}-data"),
    }


def faust_child(services: Services, workload: Workload, name: str) -> Child:
    """The Faust baseline through Faust's own CLI, as a Faust user would start it."""
    argv = [sys.executable, "-m", "faust", "-A", "bench.plain_faust", "worker", "-l", "warn"]
    env = client_env(services, workload, name)
    return Child(name, argv, env, services.workdir / f"{name}.log")


def module_child(services: Services, workload: Workload, name: str, module: str) -> Child:
    """A comparison client run as ``python -m module``."""
    env = client_env(services, workload, name)
    return Child(name, [sys.executable, "-m", module], env, services.workdir / f"{name}.log")


# ------------------------------------------------------------------ measuring


@dataclass
class Watch:
    """Polls progress until every event is in, noting when progress first appeared."""

    label: str
    total: int
    timeout: float
    started: float = field(default_factory=time.monotonic)
    first: tuple[float, int] | None = None

    def until_done(
        self,
        progress: Callable[[], int],
        check: Callable[[], None],
        on_first: Callable[[], None] = lambda: None,
    ) -> float:
        """Return the time all events were in; raise if the child dies or time runs out."""
        shown, done = self.started, 0
        while True:
            now, done = time.monotonic(), self._read(progress, done)
            if self.first is None and done > 0:
                self.first = (now, done)
                on_first()
            if done >= self.total:
                return now
            check()
            if now - self.started > self.timeout:
                raise TimeoutError(f"{self.label}: {done:,}/{self.total:,} after {self.timeout}s")
            if now - shown >= 2:
                shown = now
                say(f"  {self.label}: {done:,}/{self.total:,} events{self._rate(now, done)}")
            time.sleep(POLL)

    def _read(self, progress: Callable[[], int], last: int) -> int:
        """Progress now; a slow answer from a busy Redis is reported, not fatal."""
        try:
            return progress()
        except redis.RedisError as exc:
            say(f"  {self.label}: progress not read ({exc}); retrying")
            return last

    def _rate(self, now: float, done: int) -> str:
        if self.first is None or now <= self.first[0]:
            return " (starting)"
        return f" ({(done - self.first[1]) / (now - self.first[0]):,.0f}/s)"

    def timing(
        self, variant: str, ended: float, batch: float | None, cpu: Sequence[float | None]
    ) -> Timing:
        """``cpu``: CPU seconds of consumer, Redis, broker from the first progress to ``ended``."""
        first_t, first_n = self.first or (self.started, 0)
        if ended <= first_t:  # everything arrived before the first poll saw anything
            first_t, first_n = self.started, 0
        consume, events = ended - first_t, self.total - first_n
        return Timing(
            variant,
            events / consume,
            consume,
            ended - self.started,
            first_t - self.started,
            batch,
            *(c / events * 1e6 if c is not None else None for c in cpu),
        )


def mean_batch(port: int, events: int, processes: int = 1) -> float | None:
    """Events per applied batch, from the cs_batch_seconds histogram counts of every
    process of the worker (process i serves ``port + i``)."""
    counts: list[float] = []
    for index in range(processes):
        url = f"http://127.0.0.1:{port + index}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                text = resp.read().decode()
        except OSError:
            return None
        pattern = r"^cs_batch_seconds_count(?:\{.*\})? (\S+)$"
        counts += [float(v) for v in re.findall(pattern, text, re.MULTILINE)]
    return events / sum(counts) if counts and sum(counts) else None


def child_for(
    variant: str,
    services: Services,
    workload: Workload,
    run_id: str,
    baseline_tree: Path | None = None,
) -> tuple[Child, Progress, int | None]:
    """The process of a variant, how to read its progress and its metrics port if any."""
    name = f"{variant}-{run_id}"
    if variant in WORKER_PROCESSES:
        processes = WORKER_PROCESSES[variant]
        child, port = cspulse_child(services, workload.prefix, name, processes=processes)
        if variant == "cspulse-base":  # the worker of another checkout
            assert baseline_tree is not None
            baseline_worker(child, baseline_tree)
        return child, applied_events, port
    if variant == "faust":
        return faust_child(services, workload, name), counted_events, None
    module = {"quix": "bench.quix_app", "quix-et": "bench.quix_app"}.get(variant)
    child = module_child(services, workload, name, module or "bench.raw_client")
    if variant == "quix-et":
        child.env["BENCH_QUIX_EVENT_TIME"] = "1"
    return child, reported_events, None


def baseline_worker(child: Child, tree: Path) -> None:
    """Make ``child`` run the worker of the checkout at ``tree``: run from there (``python
    -m`` puts the working directory first on ``sys.path``, ahead of ``PYTHONPATH``: from
    this tree it would import this tree's code), with the tree first on its path."""
    child.cwd = tree
    child.env["PYTHONPATH"] = os.pathsep.join((str(tree), child.env["PYTHONPATH"]))


def run_child(
    variant: str, args: argparse.Namespace, services: Services, workload: Workload, run_id: str
) -> Timing:
    """Start one consumer process on the published topics and time it to the last event."""
    client = redis.Redis.from_url(services.redis_url, socket_timeout=30)
    client.flushall()
    child, progress, port = child_for(variant, services, workload, run_id, args.baseline)
    watch = Watch(f"{variant} {run_id}", workload.count, args.timeout)
    spy = Spy(args.py_spy / f"{variant}-{run_id}.txt" if args.py_spy else None)

    def on_first() -> None:
        meter.mark()
        spy.start(child.pid)

    with running(child):
        meter = CpuMeter((child.pid, services.redis.proc.pid, services.broker.proc.pid))
        meter.groups = frozenset({child.pid})  # the worker and every process it started
        try:
            ended = watch.until_done(lambda: progress(client, workload), child.check, on_first)
            used = meter.used()
        finally:
            spy.stop()
        processes = WORKER_PROCESSES.get(variant, 1)
        batch = mean_batch(port, workload.count, processes) if port else None
    return watch.timing(variant, ended, batch, used)


@dataclass
class CpuMeter:
    """CPU seconds used by the consumer, Redis and the broker since :meth:`mark`.

    Why Redis and the broker too: on a 2-core machine they compete with the
    consumer for the same cores, so their cost per event is part of the answer.
    A pid of ``None`` means this process.
    """

    pids: tuple[int | None, ...]
    start: list[float | None] = field(default_factory=list)
    groups: frozenset[int] = frozenset()
    """Pids that lead a process group (children started in their own session) whose
    members' CPU is summed: ``worker --processes N`` works in N child processes."""

    def read(self) -> list[float | None]:
        return [self._cpu(p) for p in self.pids]

    def _cpu(self, pid: int | None) -> float | None:
        if pid is None:
            return time.process_time()
        return group_cpu_seconds(pid) if pid in self.groups else cpu_seconds(pid)

    def mark(self) -> None:
        self.start = self.read()

    def used(self) -> list[float | None]:
        start = self.start or [None] * len(self.pids)
        return [
            e - s if e is not None and s is not None else None
            for s, e in zip(start, self.read(), strict=True)
        ]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process and all its threads (Linux /proc), if known."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float | None:
    """CPU seconds of every live process in process group ``pgid`` (Linux /proc), if any."""
    total, found = 0.0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[2]) == pgid:
            found = True
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total if found else None


def py_spy() -> str | None:
    """py-spy next to this interpreter (installed in the venv), else on PATH."""
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


@dataclass
class Spy:
    """py-spy sampling a child while it consumes (``--py-spy DIR``), not while it starts.

    Raw (collapsed) stacks of every thread, idle frames included, because the
    question is where the time goes, waiting included. Non-blocking sampling
    so the child is not paused; profiled runs are still not for the table.
    """

    out: Path | None
    proc: subprocess.Popen[bytes] | None = None

    def start(self, pid: int) -> None:
        if self.out is None:
            return
        argv = [
            py_spy() or "py-spy",
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--idle",
            "--threads",
        ]
        argv += ["--nonblocking", "--rate", "250", "--output", str(self.out)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# ------------------------------------------------------------------ core


Batches = list[tuple[int, list[RawMessage]]]
"""(partition, messages) in the order one agent applies them."""


def core_batches(workload: Workload, size: int) -> dict[str, Batches]:
    """Per topic, full batches of each partition, partitions taken in turn (as agents see them).

    Each record is a fresh copy, as a consumer's fetch makes them: the workload's own
    objects were allocated before the other variants' processes were forked, so the
    first write to each (a reference count) would fault on a copy-on-write page, a cost
    of this benchmark (about 1 µs per event) that no worker pays."""
    by_tp: defaultdict[TP, list[RawMessage]] = defaultdict(list)
    for tp, msg in workload.placed:
        by_tp[tp].append(fresh_copy(msg))
    chunks: defaultdict[str, list[Batches]] = defaultdict(list)
    for (topic, partition), msgs in sorted(by_tp.items()):
        msgs.sort(key=lambda m: m.offset)
        chunks[topic].append([(partition, msgs[i : i + size]) for i in range(0, len(msgs), size)])
    return {topic: _interleave(lists) for topic, lists in chunks.items()}


def fresh_copy(message: RawMessage) -> RawMessage:
    """The record with its key and value in newly allocated bytes."""
    key = None if message.key is None else bytes(bytearray(message.key))
    return RawMessage(message.offset, key, bytes(bytearray(message.value)), message.timestamp)


def _interleave(lists: list[Batches]) -> Batches:
    out: Batches = []
    for i in range(max(map(len, lists))):
        out.extend(lst[i] for lst in lists if i < len(lst))
    return out


def replay_processor(redis_url: str, prefix: str, dead_letters: DeadLetterSink) -> Processor:
    """The processor a replay of generated batches uses: watermark clock, this prefix."""
    settings = Settings.model_validate({"topic_prefix": prefix, "clock": "watermark"})
    return Processor(
        AsyncRedis.from_url(redis_url),
        settings.metric_config(),
        dead_letters,
        family_of=settings.family_of,
        clock=clock_named("watermark"),
    )


async def replay(
    redis_url: str,
    prefix: str,
    plan: dict[str, Batches],
    sequential: bool = False,
    per_partition: bool = False,
) -> int:
    """Apply every batch with one processor, one agent per topic; the number of dead letters.

    ``sequential``: topics one after another (billing first, as plans come from it)
    instead of concurrently, so that the final state does not depend on how the
    agents interleave (an account's plan segment does), and two runs compare.
    ``per_partition``: one agent per topic-partition (billing's first), so that
    Python folds one partition's batch while Redis applies another's."""
    letters: list[DeadLetter] = []

    async def keep(_topic: str, _partition: int, found: Sequence[DeadLetter]) -> None:
        letters.extend(found)

    processor = replay_processor(redis_url, prefix, keep)

    async def agent(topic: str, batches: Batches) -> None:
        for partition, msgs in batches:
            await processor.process(topic, partition, msgs)

    billing_first = sorted(plan, key=lambda name: (not name.endswith("billing"), name))
    if sequential:
        for topic in billing_first:
            await agent(topic, plan[topic])
    elif per_partition:
        for topics in (billing_first[:1], billing_first[1:]):
            lanes = [(t, _of_partition(plan[t], p)) for t in topics for p in _parts(plan[t])]
            await asyncio.gather(*(agent(topic, batches) for topic, batches in lanes))
    else:
        await asyncio.gather(*(agent(topic, batches) for topic, batches in plan.items()))
    return len(letters)


def _parts(batches: Batches) -> list[int]:
    return sorted({partition for partition, _msgs in batches})


def _of_partition(batches: Batches, partition: int) -> Batches:
    return [batch for batch in batches if batch[0] == partition]


async def _core(redis_url: str, prefix: str, plan: dict[str, Batches]) -> tuple[float, int]:
    started = time.perf_counter()
    letters = await replay(redis_url, prefix, plan)
    return time.perf_counter() - started, letters


def run_core(args: argparse.Namespace, services: Services, workload: Workload) -> Timing:
    """The processor on full batches, in this process, against the benchmark's Redis;
    the CPU counted from the first batch, the batches made beforehand."""
    redis.Redis.from_url(services.redis_url).flushall()
    size = Settings.model_validate({}).batch_max
    plan = core_batches(workload, size)
    meter = CpuMeter((None, services.redis.proc.pid, services.broker.proc.pid))
    meter.mark()
    bounded = asyncio.wait_for(_core(services.redis_url, workload.prefix, plan), args.timeout)
    elapsed, letters = asyncio.run(bounded)
    cpu_us = [c / workload.count * 1e6 if c is not None else None for c in meter.used()]
    if letters:
        say(f"  core: {letters} events were dead-lettered")
    say(f"  core: {workload.count:,} events in {elapsed:.1f}s")
    rate = workload.count / elapsed
    return Timing("core", rate, elapsed, elapsed, 0.0, float(size), *cpu_us)


# ------------------------------------------------------------------ report


def median_of(runs: list[Timing], attr: str) -> float:
    return float(statistics.median(getattr(t, attr) for t in runs))


def paired_ratio(runs: dict[str, list[Timing]], variant: str, baseline: str) -> float | None:
    """Median over repeats of variant/baseline within the same repeat: robust to load drift."""
    if baseline not in runs:
        return None
    pairs = zip(runs[variant], runs[baseline], strict=False)
    return statistics.median(v.rate / b.rate for v, b in pairs)


def table(runs: dict[str, list[Timing]]) -> str:
    baselines = [b for b in BASELINES if b in runs]
    head = (
        "| variant | events/s (median) | min - max | "
        + "".join(f"ratio to {b} | " for b in baselines)
        + "CPU µs/event: consumer / Redis / broker | "
        "consume s | total s (with startup) | startup s | events/batch |\n"
        "|---|---:|---:|" + "---:|" * len(baselines) + "---:|---:|---:|---:|---:|"
    )
    rows = [head]
    for variant, timings in runs.items():
        batches = [t.batch for t in timings if t.batch]
        rates = [t.rate for t in timings]
        ratios = "".join(
            f"{f'{r:.2f}' if (r := paired_ratio(runs, variant, b)) is not None else '-'} | "
            for b in baselines
        )
        rows.append(
            f"| {variant} | {median_of(timings, 'rate'):,.0f} | "
            f"{min(rates):,.0f} - {max(rates):,.0f} | {ratios}"
            f"{cpu_cell(timings)} | "
            f"{median_of(timings, 'consume_s'):.1f} | {median_of(timings, 'total_s'):.1f} | "
            f"{median_of(timings, 'startup_s'):.1f} | "
            f"{f'{statistics.median(batches):,.0f}' if batches else '-'} |"
        )
    return "\n".join(rows)


def cpu_cell(timings: list[Timing]) -> str:
    """Median CPU µs per event of consumer / Redis / broker ('-' where unknown)."""
    cells = []
    for attr in ("cpu_us", "redis_cpu_us", "broker_cpu_us"):
        known = [v for t in timings if (v := getattr(t, attr)) is not None]
        cells.append(f"{statistics.median(known):,.1f}" if known else "-")
    return " / ".join(cells)


def installed_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed (pip install -e '.[bench]')"


def facts(args: argparse.Namespace) -> str:
    return (
        f"{args.events:,} events, {args.partitions} partitions per topic, "
        f"{args.repeat} repeats; nproc {os.cpu_count()}, Python {sys.version.split()[0]}, "
        f"faust-streaming {installed_version('faust-streaming')}, "
        f"quixstreams {installed_version('quixstreams')}"
    )


# ------------------------------------------------------------------ main


@contextmanager
def services_on_loopback() -> Iterator[Services]:
    """A broker and a Redis in a scratch directory, stopped and removed on exit."""
    workdir = Path(tempfile.mkdtemp(prefix="cspulse-bench-"))
    broker = start_broker(workdir)
    try:
        redis_proc = start_redis(workdir)
        try:
            yield Services(broker, redis_proc, workdir)
        finally:
            redis_proc.stop()
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def measure(
    args: argparse.Namespace, services: Services, workload: Workload
) -> dict[str, list[Timing]]:
    """Run every variant once per repeat, interleaved, so drift in load hits them alike."""
    runs: dict[str, list[Timing]] = {v: [] for v in args.variants}
    for repeat in range(1, args.repeat + 1):
        for variant in args.variants:
            say(f"repeat {repeat}/{args.repeat}: {variant}")
            if variant.startswith("core"):
                timing = run_core(args, services, workload)
            else:
                timing = run_child(variant, args, services, workload, f"r{repeat}")
            say(
                f"  {variant}: {timing.rate:,.0f} events/s consuming, "
                f"{timing.total_s:.1f}s with startup"
            )
            runs[variant].append(timing)
    return runs


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.throughput", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--events", type=int, default=300_000, help="events to publish and consume")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant (median taken)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic")
    parser.add_argument(
        "--accounts", type=int, default=200, help="accounts the generator simulates"
    )
    parser.add_argument("--seed", type=int, default=1, help="generator seed")
    parser.add_argument(
        "--variants",
        type=lambda s: s.split(","),
        default=list(VARIANTS),
        help=f"comma-separated, in run order, from {','.join(VARIANTS)}",
    )
    parser.add_argument(
        "--timeout", type=float, default=0, help="seconds per run (0: from --events)"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of another cspulse version: the cspulse-base variant runs its worker",
    )
    parser.add_argument("--py-spy", type=Path, help="record py-spy profiles of children here")
    parser.add_argument("--json", type=Path, help="also write every run's timings here")
    args = parser.parse_args(argv)
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    if ("cspulse-base" in args.variants) != (args.baseline is not None):
        parser.error("the cspulse-base variant and --baseline DIR go together")
    if args.baseline is not None and not (args.baseline / "streams" / "app.py").is_file():
        parser.error(f"--baseline {args.baseline}: not a cspulse checkout (no streams/app.py)")
    quix = {"quix", "quix-et"} & set(args.variants)
    if quix and installed_version("quixstreams") == "not installed":
        parser.error("the quix variant needs Quix Streams: pip install -e '.[bench]'")
    args.timeout = args.timeout or 60 + args.events / 500
    if args.py_spy:
        if py_spy() is None:
            parser.error("--py-spy needs py-spy: pip install py-spy")
        args.py_spy.mkdir(parents=True, exist_ok=True)
    return args


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    """SIGTERM (a timeout, a CI cancel) unwinds like Ctrl-C, so every child is stopped."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    say(f"throughput benchmark: {facts(args)}")
    with services_on_loopback() as services:
        workload = publish(services, args)
        runs = measure(args, services, workload)
    print(f"\n{facts(args)}\n")
    print(table(runs))
    if args.json:
        data = {v: [asdict(t) for t in ts] for v, ts in runs.items()}
        args.json.write_bytes(
            orjson.dumps({"facts": facts(args), "runs": data}, option=orjson.OPT_INDENT_2)
        )


if __name__ == "__main__":
    main()
