"""Start-up checks shared by the commands: Redis answers, the topics exist.

Each waits a bounded time for a service that is still starting, tells the
user what it is trying, and stops at once, in one line without a traceback,
on what waiting cannot fix (a refused login, missing rights).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from typing import Any

import typer
from redis import Redis as SyncRedis
from redis.exceptions import RedisError

from aggregators.connection import RedisOptions, RedisSettingsError, sync_client
from aggregators.layout import LayoutMismatch, check_layout, claim_layout
from aggregators.status import ping
from streams.config import Settings
from streams.kafka_options import KafkaSetupError, capture_client_errors, describe_failure
from streams.logs import redact
from streams.retry import RetryPolicy, on_types, retry_sync
from streams.topics import create_topics


def fail(message: str) -> None:
    """One clear line on stderr and exit code 2: no traceback for operator errors."""
    typer.secho(redact(f"cspulse: {message}"), err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


def sync_redis(settings: Settings, url: str, **options: Any) -> SyncRedis:
    """A blocking Redis client for ``url`` in the configured mode (standalone, cluster,
    sentinel), with the password set apart when it is the configured URL."""
    extra = settings.redis_options() if url == settings.redis_url else {}
    client: SyncRedis = sync_client(redis_options_from_env(url), **extra, **options)
    return client


def redis_options_from_env(url: str) -> RedisOptions:
    """Mode, timeouts and health checks from ``CSPULSE_REDIS_*``; one line if inconsistent."""
    try:
        return RedisOptions.from_env(url=url)
    except RedisSettingsError as exc:
        fail(f"invalid Redis settings: {exc}")
        raise  # unreachable


REDIS_AT_START = RetryPolicy(initial=0.2, factor=2.0, ceiling=2.0)
KAFKA_AT_START = RetryPolicy(initial=0.5, factor=2.0, ceiling=5.0, log_level=logging.DEBUG)
"""Start-up waits; each command gives the deadline. Kafka's retries are told on
stderr by :func:`ensure_topics` itself, so its log line is only for debugging."""


def wait_for_redis(settings: Settings, url: str, timeout: float) -> None:
    """Ping Redis until it answers, telling the user what is being tried."""

    def transient(exc: BaseException) -> bool:
        return isinstance(exc, RedisError | OSError) and not _permanent_redis_error(exc)

    client = sync_redis(settings, url, socket_connect_timeout=2)
    policy = dataclasses.replace(REDIS_AT_START, deadline=timeout)
    try:
        retry_sync(lambda: ping(client), policy, transient, f"Redis at {redact(url)}")
    except (RedisError, OSError) as exc:
        if _permanent_redis_error(exc):
            fail(
                f"Redis at {url} refused the login ({exc}). Check the password (in the URL "
                "or CSPULSE_REDIS_PASSWORD) and the ACL user."
            )
        fail(f"cannot reach Redis at {url} ({exc}). Start Redis or set CSPULSE_REDIS_URL.")
    finally:
        client.close()


def check_redis_layout(settings: Settings, url: str, *, claim: bool) -> None:
    """Refuse, in one line, a Redis that holds another layout version than this code's;
    ``claim``: record this code's version when none is recorded (workers)."""
    client = sync_redis(settings, url, socket_connect_timeout=5, socket_timeout=10)
    try:
        (claim_layout if claim else check_layout)(client)
    except LayoutMismatch as exc:
        fail(str(exc))
    except (RedisError, OSError) as exc:
        fail(f"cannot read Redis at {redact(url)} ({exc}). Check CSPULSE_REDIS_URL.")
    finally:
        client.close()


def _permanent_redis_error(exc: BaseException) -> bool:
    from redis.exceptions import AuthenticationError, AuthorizationError, ResponseError

    if isinstance(exc, AuthenticationError | AuthorizationError):
        return True
    return isinstance(exc, ResponseError) and any(
        word in str(exc) for word in ("WRONGPASS", "NOAUTH", "NOPERM", "AUTH")
    )


class KafkaUnreachable(Exception):
    """The broker did not answer (yet); the message is the client's own reason."""


def ensure_topics(
    settings: Settings, bootstrap: str, timeout: float, replication_factor: int | None = None
) -> None:
    """Create the topics, retrying until the broker answers or ``timeout`` passes.

    A rejected login, missing rights or an untrusted certificate stop at once:
    waiting does not fix them.
    """

    def create() -> None:
        with capture_client_errors() as logged:
            try:
                create = create_topics(settings, bootstrap, replication_factor=replication_factor)
                asyncio.run(asyncio.wait_for(create, 10))
                return
            except (ValueError, KafkaSetupError) as exc:
                fail(str(exc))
            except Exception as exc:
                cause = logged.messages[-1] if logged.messages else f"{type(exc).__name__}: {exc}"
                permanent = describe_failure(exc, settings, bootstrap, logged.errors)
        if permanent:
            fail(permanent)
        raise KafkaUnreachable(cause)

    attempts = itertools.count(1)

    def tell(exc: BaseException) -> None:
        line = f"cspulse: Kafka at {bootstrap} not reachable yet ({exc}); retry {next(attempts)}"
        typer.secho(redact(line), err=True)

    policy = dataclasses.replace(KAFKA_AT_START, deadline=timeout)
    try:
        retry_sync(create, policy, on_types(KafkaUnreachable), f"Kafka at {bootstrap}", tell)
    except KafkaUnreachable as exc:
        fail(
            f"cannot reach Kafka at {bootstrap} ({exc}). Start the broker or set "
            "CSPULSE_KAFKA_BOOTSTRAP (and CSPULSE_KAFKA_SECURITY_PROTOCOL if it needs TLS "
            "or SASL)."
        )
