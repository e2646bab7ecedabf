"""One retry helper for every "wait until the service answers" loop.

Redis outages, transient Redis refusals and a broker that is still starting
all get the same treatment: log what failed and when the next try is, back
off exponentially up to a ceiling, and try again. A :class:`RetryPolicy`
says how; :func:`retry_async` and :func:`retry_sync` run an operation under it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("cspulse.retry")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``initial`` seconds, times ``factor`` per try, at most ``ceiling``.

    ``deadline`` (seconds from the first try) bounds the whole loop; None retries forever.
    """

    initial: float = 0.1
    factor: float = 2.0
    ceiling: float = 5.0
    deadline: float | None = None

    def delays(self) -> Callable[[], float]:
        """A fresh backoff sequence: each call returns the next delay."""
        current = self.initial

        def next_delay() -> float:
            nonlocal current
            delay, current = current, min(current * self.factor, self.ceiling)
            return delay

        return next_delay


Classifier = Callable[[BaseException], bool]
"""Whether an error is worth another try (True) or must be raised (False)."""


def on_types(*types: type[BaseException]) -> Classifier:
    return lambda exc: isinstance(exc, types)


async def retry_async(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    retryable: Classifier,
    what: str,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Await ``operation`` until it succeeds; raise non-retryable errors and past the deadline."""
    next_delay, started = policy.delays(), time.monotonic()
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not retryable(exc) or _past(policy, started):
                raise
            delay = next_delay()
            _log_retry(what, exc, delay, on_retry)
            await asyncio.sleep(delay)


def retry_sync(
    operation: Callable[[], T],
    policy: RetryPolicy,
    retryable: Classifier,
    what: str,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """The blocking twin of :func:`retry_async`, for command-line start-up checks."""
    next_delay, started = policy.delays(), time.monotonic()
    while True:
        try:
            return operation()
        except Exception as exc:
            if not retryable(exc) or _past(policy, started):
                raise
            delay = next_delay()
            _log_retry(what, exc, delay, on_retry)
            time.sleep(delay)


def _past(policy: RetryPolicy, started: float) -> bool:
    return policy.deadline is not None and time.monotonic() - started >= policy.deadline


def _log_retry(
    what: str, exc: BaseException, delay: float, on_retry: Callable[[BaseException], None] | None
) -> None:
    if on_retry is not None:
        on_retry(exc)
    log.warning("%s failed (%s: %s); retrying in %.1fs", what, type(exc).__name__, exc, delay)
