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
    ``log_level`` is that of the line logged per retry: polls expected to fail a
    while (a port still opening) log at DEBUG, not as warnings.
    """

    initial: float = 0.1
    factor: float = 2.0
    ceiling: float = 5.0
    deadline: float | None = None
    log_level: int = logging.WARNING

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
    backoff = _Backoff(policy, retryable, what, on_retry)
    while True:
        try:
            return await operation()
        except Exception as exc:
            await asyncio.sleep(backoff.after(exc))


def retry_sync(
    operation: Callable[[], T],
    policy: RetryPolicy,
    retryable: Classifier,
    what: str,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """The blocking twin of :func:`retry_async`, for command-line start-up checks."""
    backoff = _Backoff(policy, retryable, what, on_retry)
    while True:
        try:
            return operation()
        except Exception as exc:
            time.sleep(backoff.after(exc))


class _Backoff:
    """One retry loop's state: what the next delay is, and when to give up."""

    def __init__(
        self,
        policy: RetryPolicy,
        retryable: Classifier,
        what: str,
        on_retry: Callable[[BaseException], None] | None,
    ) -> None:
        self.policy, self.retryable, self.what, self.on_retry = policy, retryable, what, on_retry
        self.next_delay, self.started = policy.delays(), time.monotonic()

    def after(self, exc: Exception) -> float:
        """The delay before the next try; re-raises ``exc`` when it is final."""
        deadline = self.policy.deadline
        if not self.retryable(exc) or (
            deadline is not None and time.monotonic() - self.started >= deadline
        ):
            raise exc
        delay = self.next_delay()
        if self.on_retry is not None:
            self.on_retry(exc)
        log.log(
            self.policy.log_level,
            "%s failed (%s: %s); retrying in %.1fs",
            self.what,
            type(exc).__name__,
            exc,
            delay,
        )
        return delay
