"""Redis clients for the worker and the reader: one place for mode, timeouts and health checks.

``CSPULSE_REDIS_MODE`` picks the topology:

* ``standalone`` (default): ``CSPULSE_REDIS_URL`` is one ``redis://`` URL;
* ``cluster``: ``CSPULSE_REDIS_URL`` names one or more seed nodes, comma
  separated; redis-py's ``RedisCluster`` follows MOVED/ASK and refreshes
  its slot map. Every script cspulse runs touches one hash slot;
* ``sentinel``: ``CSPULSE_REDIS_URL`` names the Sentinels, comma separated,
  and ``CSPULSE_REDIS_MASTER`` the monitored master; the client asks the
  Sentinels for the current master and reconnects after a failover.

Refusals during a failover or a resharding (TRYAGAIN, CLUSTERDOWN, MOVED
after the client's own retries) are retried by the processor
(``streams.processor.is_transient``), never dead-lettered.

Every client gets socket and connect timeouts (a blackholed Redis fails a
call in seconds instead of hanging a worker that keeps its partitions) and
a periodic health check of idle connections.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis
import redis.asyncio
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

MODES = ("standalone", "cluster", "sentinel")
TLS_QUERY = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
"""TLS options a ``rediss://`` URL may carry as query parameters in every mode (a
managed cluster's private CA); standalone URLs pass them to redis-py themselves."""


class RedisSettingsError(ValueError):
    """The Redis settings are inconsistent; the message says which and how to fix it."""


@dataclass(frozen=True)
class RedisOptions:
    """Where Redis is and how to talk to it."""

    url: str = "redis://127.0.0.1:6379/0"
    mode: str = "standalone"
    master_name: str = "mymaster"
    """Sentinel mode: the name the Sentinels monitor."""
    socket_timeout: float = 10.0
    """Seconds a command may wait for its reply (scrapes and applies take milliseconds)."""
    connect_timeout: float = 3.0
    health_check_interval: int = 15
    """Seconds a pooled connection may sit idle before a PING checks it on reuse."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise RedisSettingsError(
                f"CSPULSE_REDIS_MODE={self.mode!r} is not one of {', '.join(MODES)}"
            )
        if self.mode == "standalone" and "," in self.url:
            raise RedisSettingsError(
                "CSPULSE_REDIS_URL lists several servers but CSPULSE_REDIS_MODE is standalone: "
                "set CSPULSE_REDIS_MODE=cluster or sentinel, or give one URL"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> RedisOptions:
        """From ``CSPULSE_REDIS_URL``, ``CSPULSE_REDIS_MODE``, ``CSPULSE_REDIS_MASTER``,
        ``CSPULSE_REDIS_SOCKET_TIMEOUT`` and ``CSPULSE_REDIS_CONNECT_TIMEOUT``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, field, kind in (
            ("CSPULSE_REDIS_URL", "url", str),
            ("CSPULSE_REDIS_MODE", "mode", str),
            ("CSPULSE_REDIS_MASTER", "master_name", str),
            ("CSPULSE_REDIS_SOCKET_TIMEOUT", "socket_timeout", float),
            ("CSPULSE_REDIS_CONNECT_TIMEOUT", "connect_timeout", float),
        ):
            raw = env.get(name, "").strip()
            if raw:
                try:
                    values[field] = kind(raw.lower() if field == "mode" else raw)
                except ValueError as exc:
                    raise RedisSettingsError(f"{name}={raw!r} is not a number") from exc
        values.update(overrides)
        return cls(**values)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """(host, port) of each comma-separated entry of the URL."""
        out = []
        for entry in self.url.split(","):
            entry = entry.strip()
            parts = urlsplit(entry if "://" in entry else f"redis://{entry}")
            default = 26379 if self.mode == "sentinel" else 6379
            out.append((parts.hostname or "127.0.0.1", parts.port or default))
        return out

    @property
    def _first(self) -> Any:
        return urlsplit(self.url.split(",")[0].strip())

    def _common(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.connect_timeout,
            "health_check_interval": self.health_check_interval,
            "socket_keepalive": True,
        }
        first = self._first
        if first.scheme == "rediss" and self.mode != "standalone":
            options |= self.tls()  # standalone URLs carry it themselves
        if first.password:
            options["password"] = first.password
        if first.username:
            options["username"] = first.username
        return options

    def tls(self) -> dict[str, Any]:
        """``ssl`` and the :data:`TLS_QUERY` parameters of the first ``rediss://`` URL."""
        first = self._first
        if first.scheme != "rediss":
            return {}
        query = parse_qs(first.query)
        return {"ssl": True} | {name: query[name][-1] for name in TLS_QUERY if name in query}


def async_client(options: RedisOptions, **extra: Any) -> Any:
    """An asyncio client for the worker: ``redis.asyncio.Redis`` or ``RedisCluster``.

    ``extra`` keyword arguments (a password set apart, TLS files) go to every connection.
    """
    common = {**options._common(), **extra}
    if options.mode == "cluster":
        nodes = [AsyncClusterNode(host, port) for host, port in options.addresses]
        common.pop("health_check_interval")
        return AsyncRedisCluster(startup_nodes=nodes, **common)
    if options.mode == "sentinel":
        sentinel = AsyncSentinel(options.addresses, sentinel_kwargs=_sentinel_kwargs(options))
        return sentinel.master_for(options.master_name, **common)
    return redis.asyncio.Redis.from_url(options.url, **common)


def sync_client(options: RedisOptions, **extra: Any) -> Any:
    """A blocking client for the reader (scrapes): ``redis.Redis`` or ``RedisCluster``."""
    common = {**options._common(), **extra}
    if options.mode == "cluster":
        nodes = [ClusterNode(host, port) for host, port in options.addresses]  # type: ignore[no-untyped-call]
        return RedisCluster(startup_nodes=nodes, **common)
    if options.mode == "sentinel":
        sentinel = Sentinel(options.addresses, sentinel_kwargs=_sentinel_kwargs(options))
        return sentinel.master_for(options.master_name, **common)
    return redis.Redis.from_url(options.url, **common)


def _sentinel_kwargs(options: RedisOptions) -> dict[str, Any]:
    """For the connections to the Sentinels: timeouts, and TLS when the URL says rediss."""
    return {
        "socket_timeout": options.socket_timeout,
        "socket_connect_timeout": options.connect_timeout,
        **options.tls(),
    }
