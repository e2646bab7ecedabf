"""How many family errors a partition may dead-letter before the worker stops.

An exception from a family's code (``key``, ``count``, ``fold``, ``place``,
``contribute``, ``finish``, ``facts``) dead-letters the events that caused it
as ``processing_error`` (:func:`aggregators.batch.fold_batch`). A few such
letters are bad data the code does not handle; many in a minute are a bug
that would empty the topic into the dead-letter topic. So each partition
may dead-letter up to ``CSPULSE_PROCESSING_ERROR_CAP`` of them per minute;
the batch that goes past the cap raises :class:`TooManyErrors` before any of
its letters is published or anything applied, and the worker stops with the
family's traceback. The offset fence makes the restart exact.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from aggregators.batch import Outcome

DEFAULT_ERROR_CAP = 100
"""Family errors dead-lettered per partition and minute before the worker stops."""
WINDOW_SECONDS = 60.0


class TooManyErrors(RuntimeError):
    """A partition's family errors went past the cap: the worker stops."""


class ErrorBudget:
    """Family errors dead-lettered per partition over the last minute."""

    def __init__(
        self, cap: int = DEFAULT_ERROR_CAP, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.cap, self.clock = cap, clock
        self._spent: dict[tuple[str, int], deque[tuple[float, int]]] = {}

    def spend(self, topic: str, partition: int, outcome: Outcome) -> None:
        """Count the batch's failed events; raise (from the first one's exception) when
        they take the partition past the cap within a minute."""
        n = len(outcome.failed)
        if not n:
            return
        now = self.clock()
        spent = self._spent.setdefault((topic, partition), deque())
        while spent and spent[0][0] <= now - WINDOW_SECONDS:
            spent.popleft()
        total = n + sum(k for _, k in spent)
        if total > self.cap:
            first = outcome.failed[0]
            raise TooManyErrors(
                f"{topic}[{partition}]: {total} events failed in the family's code within a "
                f"minute, past CSPULSE_PROCESSING_ERROR_CAP={self.cap} (first at offset "
                f"{first[0].offset}: {first[1]}); stopping: fix the bug, or raise the cap"
            ) from outcome.error
        spent.append((now, n))
