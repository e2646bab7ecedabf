"""A real Redis Cluster on loopback for tests: 3 masters, 3 replicas, AOF everysec.

Started from ``redis-server --cluster-enabled yes`` and formed with
``redis-cli --cluster create``, as an operator would.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from streams.demo.embedded import Process, ServiceError, free_port, start_redis


@dataclass
class Cluster:
    nodes: list[Process] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Every node as a seed, comma separated (CSPULSE_REDIS_URL in cluster mode)."""
        return ",".join(f"redis://127.0.0.1:{n.port}" for n in self.nodes)

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=5)

    def masters(self) -> list[int]:
        """Ports of the nodes that are masters now (alive ones only)."""
        out = []
        for node in self.nodes:
            if node.proc.poll() is None:
                try:
                    if self.client(node.port).info("replication")["role"] == "master":
                        out.append(node.port)
                except redis.ConnectionError:
                    continue
        return out

    def failover_ready_masters(self) -> list[int]:
        """Masters with a live, synced replica: killing one of them promotes the replica
        (killing a master with none would leave its slots unserved)."""
        out = []
        for port in self.masters():
            info = self.client(port).info("replication")
            replicas = [v for k, v in info.items() if k.startswith("slave") and k[5:].isdigit()]
            if any(isinstance(r, dict) and r.get("state") == "online" for r in replicas):
                out.append(port)
        return out

    def replica_of(self, master: int) -> Process:
        """The live replica replicating from the master on port ``master``."""
        for node in self._alive():
            info = self.client(node.port).info("replication")
            if info["role"] == "slave" and int(info["master_port"]) == master:
                return node
        raise ServiceError(f"no live replica of port {master}")

    def detach(self, replica: Process, master: int) -> None:
        """Freeze ``replica``, then have its master (port ``master``) drop the link, so
        that what the master acknowledges from now on never reaches it (a replica only
        frozen would find those writes in its socket buffer on waking; one only cut
        off would reconnect and catch up within milliseconds)."""
        replica.proc.send_signal(signal.SIGSTOP)
        self.client(master).client_kill_filter(_type="replica")

    def resume(self, replica: Process) -> None:
        replica.proc.send_signal(signal.SIGCONT)

    def wait_ok(self, timeout: float = 60, masters: int = 3) -> None:
        """Until every live node reports cluster_state:ok with all slots served, there
        are ``masters`` masters and every replica's link to its master is up (a
        replica that never synced cannot take over)."""
        deadline = time.monotonic() + timeout
        while True:
            states = []
            for node in self.nodes:
                if node.proc.poll() is None:
                    try:
                        info = self.client(node.port).cluster("info")
                        states.append(_parse_info(info))
                    except redis.RedisError:
                        states.append({})
            if all(
                s.get("cluster_state") == "ok" and s.get("cluster_slots_ok") == "16384"
                for s in states
            ):
                return
            if time.monotonic() > deadline:
                raise ServiceError(f"cluster not ok after {timeout:.0f}s: {states}")
            time.sleep(0.2)

    def wait_failover(self, dead: int, timeout: float = 60) -> None:
        """After a master on port ``dead`` is killed: until no live node's slot map names
        it any more (its replica took over) and the cluster is ok. Right after the kill
        the others still report ok with the dead master in their maps."""
        deadline = time.monotonic() + timeout
        while any(dead in self._slot_masters(node.port) for node in self._alive()):
            if time.monotonic() > deadline:
                raise ServiceError(f"no replica took over from port {dead} in {timeout:.0f}s")
            time.sleep(0.2)
        self.wait_ok(max(1.0, deadline - time.monotonic()))

    def _alive(self) -> list[Process]:
        return [node for node in self.nodes if node.proc.poll() is None]

    def _slot_masters(self, port: int) -> set[int]:
        """Ports of the masters in ``port``'s view of the slot map (its own view only)."""
        try:
            slots = self.client(port).execute_command("CLUSTER", "SLOTS")
        except redis.RedisError:
            return set()
        return {int(entry[2][1]) for entry in slots}

    def _replicas_synced(self) -> bool:
        for node in self.nodes:
            if node.proc.poll() is None:
                try:
                    info = self.client(node.port).info("replication")
                except redis.ConnectionError:
                    return False
                if info["role"] == "slave" and info.get("master_link_status") != "up":
                    return False
        return True

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


def _parse_info(info: object) -> dict[str, str]:
    if isinstance(info, dict):
        return {str(k): str(v) for k, v in info.items()}
    text = info.decode() if isinstance(info, bytes) else str(info)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and in range too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise ServiceError("no free port pair (port, port + 10000) for a cluster node")


def start_cluster(workdir: Path, masters: int = 3, replicas: int = 1) -> Cluster:
    cli = shutil.which("redis-cli")
    if cli is None:
        raise ServiceError("redis-cli not found: install redis-tools (Debian: redis-server)")
    cluster = Cluster()
    try:
        for _ in range(masters * (1 + replicas)):
            port = _cluster_port()
            node_dir = workdir / f"node-{port}"
            node_dir.mkdir(parents=True)
            extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--cluster-node-timeout",
                "2000",
                "--repl-diskless-sync-delay",
                "0",
            ]
            cluster.nodes.append(start_redis(node_dir, port, persist=True, extra=extra))
        argv = [cli, "--cluster", "create"]
        argv += [f"127.0.0.1:{n.port}" for n in cluster.nodes]
        argv += ["--cluster-replicas", str(replicas), "--cluster-yes"]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
        cluster.wait_ok()
    except BaseException:
        cluster.stop()
        raise
    return cluster
