"""Experimental Faust patches, to measure what Faust's per-message handoff costs.

Not for production and not used by cspulse: the benchmark applies these in
its child processes only when ``BENCH_FAUST_PATCH`` names them, to answer
"how much faster would the same app be if Faust did less per message?".

``direct-drain``
    Faust's consumer hands every message to the conductor with
    ``wait_first(callback(message), suspend_flow.wait())``, which wraps both
    in tasks (plus two more for the service's stopped/crashed events) and
    runs ``asyncio.wait`` -- per message. The patch awaits the callback
    directly while the flow is not suspended. What is lost: a callback
    blocked on a full stream queue can no longer be abandoned when a
    rebalance suspends the flow, so a real fix must keep that escape (for
    example by racing only when the queue is full).
"""

from __future__ import annotations

import os
from collections.abc import Coroutine
from typing import Any

from faust.transport.consumer import Consumer
from mode.services import WaitResults

PATCH_ENV = "BENCH_FAUST_PATCH"


def direct_drain() -> None:
    """Make Consumer.wait_first await the message callback directly in the common case."""
    original = Consumer.wait_first

    async def wait_first(self: Consumer, *coros: Any, timeout: Any = None) -> WaitResults:
        if len(coros) == 2 and timeout is None and not self.suspend_flow.is_set():
            callback, suspended = coros
            if isinstance(callback, Coroutine) and isinstance(suspended, Coroutine):
                suspended.close()  # never awaited: only there to abort on suspension
                return WaitResults([callback], [await callback], False)
        return await original(self, *coros, timeout=timeout)

    Consumer.wait_first = wait_first  # type: ignore[method-assign, assignment]


PATCHES = {"direct-drain": direct_drain}


def apply_from_env() -> None:
    """Apply the comma-separated patches named in ``BENCH_FAUST_PATCH`` (none by default)."""
    for name in filter(None, os.environ.get(PATCH_ENV, "").split(",")):
        PATCHES[name]()
