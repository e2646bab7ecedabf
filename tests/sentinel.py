"""A real Redis with Sentinel on loopback for tests: a master, one replica, three Sentinels.

The master and replica are ``redis-server`` with AOF everysec; each Sentinel
is the same binary started with ``--sentinel`` on a generated config file, as
an operator would (quorum 2, a master down after 1 s without a reply).
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from streams.demo.embedded import (
    Process,
    ServiceError,
    free_port,
    redis_server_binary,
    start_redis,
    wait_for_port,
)

MASTER_NAME = "cspulse"
DOWN_AFTER_MS = 1000
"""A master that has not answered for this long is subjectively down."""


@dataclass
class SentinelSetup:
    master: Process
    replica: Process
    sentinels: list[Process] = field(default_factory=list)
    master_name: str = MASTER_NAME

    @property
    def url(self) -> str:
        """Every Sentinel, comma separated (CSPULSE_REDIS_URL in sentinel mode)."""
        return ",".join(f"redis://127.0.0.1:{s.port}" for s in self.sentinels)

    def master_port(self) -> int | None:
        """The port the Sentinels now name as master, if any answers."""
        for sentinel in self.sentinels:
            if sentinel.proc.poll() is not None:
                continue
            try:
                client = redis.Redis(port=sentinel.port, socket_timeout=2)
                _host, port = client.execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name
                )
                return int(port)
            except (redis.RedisError, TypeError, ValueError):
                continue
        return None

    def wait_master(self, port: int, timeout: float = 30) -> None:
        """Until the Sentinels name ``port`` as master and it says it is one."""
        deadline = time.monotonic() + timeout
        while True:
            if self.master_port() == port and _role(port) == "master":
                return
            if time.monotonic() > deadline:
                raise ServiceError(f"Sentinels did not promote port {port} in {timeout:.0f}s")
            time.sleep(0.2)

    def detach_replica(self) -> None:
        """Freeze the replica, then have the master drop its link, so that what the
        master acknowledges from now on never reaches it: killing the master then
        loses those writes, as a failover to a lagging replica does. (A replica only
        frozen would find them in its socket buffer on waking; one only cut off
        would reconnect and catch up within milliseconds.)"""
        self.replica.proc.send_signal(signal.SIGSTOP)
        redis.Redis(port=self.master.port, socket_timeout=2).client_kill_filter(_type="replica")

    def resume_replica(self) -> None:
        self.replica.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume_replica()
        for process in (*self.sentinels, self.replica, self.master):
            process.kill()


def _role(port: int) -> str | None:
    try:
        return str(redis.Redis(port=port, socket_timeout=2).info("replication")["role"])
    except redis.RedisError:
        return None


def _wait_replica_synced(replica: Process, timeout: float = 30) -> None:
    """A replica that never synced cannot take over: wait for its link to be up."""
    client = redis.Redis(port=replica.port, socket_timeout=2)
    deadline = time.monotonic() + timeout
    while client.info("replication").get("master_link_status") != "up":
        if time.monotonic() > deadline:
            raise ServiceError(f"replica on port {replica.port} did not sync in {timeout:.0f}s")
        time.sleep(0.1)


def _sentinel_config(port: int, master_port: int, quorum: int) -> str:
    return "\n".join(
        [
            f"port {port}",
            "bind 127.0.0.1",
            "protected-mode no",
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} {quorum}",
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {MASTER_NAME} 5000",
            f"sentinel parallel-syncs {MASTER_NAME} 1",
            "",
        ]
    )


def start_sentinel(workdir: Path, master_port: int, quorum: int) -> Process:
    """``redis-server <config> --sentinel``; the config is writable (Sentinel rewrites it)."""
    port = free_port()
    config = workdir / f"sentinel-{port}.conf"
    config.write_text(_sentinel_config(port, master_port, quorum))
    log_path = workdir / f"sentinel-{port}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [redis_server_binary(), str(config), "--sentinel"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            start_new_session=True,
        )
    process = Process(f"sentinel-{port}", proc, port, workdir, log_path)
    try:
        wait_for_port(port, proc, process.name)
    except ServiceError:
        process.kill()
        raise
    return process


def start_sentinel_setup(workdir: Path, sentinels: int = 3) -> SentinelSetup:
    """A master, one synced replica, and ``sentinels`` Sentinels that see both."""
    master = start_redis(_subdir(workdir, "master"), persist=True)
    try:
        replica_args = ["--replicaof", "127.0.0.1", str(master.port)]
        replica = start_redis(_subdir(workdir, "replica"), persist=True, extra=replica_args)
    except BaseException:
        master.kill()
        raise
    setup = SentinelSetup(master, replica)
    try:
        _wait_replica_synced(replica)
        quorum = sentinels // 2 + 1
        for _ in range(sentinels):
            setup.sentinels.append(start_sentinel(workdir, master.port, quorum))
        _wait_sentinels_see_replica(setup)
    except BaseException:
        setup.stop()
        raise
    return setup


def _wait_sentinels_see_replica(setup: SentinelSetup, timeout: float = 30) -> None:
    """Sentinels learn replicas and each other from the master within seconds; a
    failover before that would find no replica to promote."""
    deadline = time.monotonic() + timeout
    others = len(setup.sentinels) - 1
    while True:
        ready = 0
        for sentinel in setup.sentinels:
            client = redis.Redis(port=sentinel.port, socket_timeout=2, decode_responses=True)
            replicas = client.execute_command("SENTINEL", "REPLICAS", setup.master_name)
            peers = client.execute_command("SENTINEL", "SENTINELS", setup.master_name)
            if replicas and len(peers) >= others:
                ready += 1
        if ready == len(setup.sentinels):
            return
        if time.monotonic() > deadline:
            raise ServiceError(f"Sentinels did not discover the replica in {timeout:.0f}s")
        time.sleep(0.2)


def _subdir(workdir: Path, name: str) -> Path:
    path = workdir / name
    path.mkdir(parents=True, exist_ok=True)
    return path
