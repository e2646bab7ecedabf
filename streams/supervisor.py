"""``cspulse worker --processes N``: N worker processes of one consumer group on one host.

One Python process uses about one core; a host with more cores runs one
worker per core without a process manager. Each child is a full worker
(its own consumer in the group, its own ``/metrics`` on ``port + index``),
so the group spreads the partitions over them. The parent forwards SIGTERM
and SIGINT, restarts a child that dies, and exits when all have stopped.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger("cspulse.supervisor")

RESTART_DELAY = 2.0
"""Seconds before a child that died is started again (a crash loop stays slow)."""

ChildMain = Callable[[int], None]
"""Runs worker number ``index``; must be importable (children are spawned)."""


class Supervisor:
    """Keeps ``count`` children running ``main(index)`` until told to stop."""

    def __init__(self, main: ChildMain, count: int) -> None:
        self.main = main
        self.count = count
        self.stopping = False
        self._context = multiprocessing.get_context("spawn")
        self._children: dict[int, BaseProcess] = {}

    def run(self) -> int:
        """Start the children and watch them; returns the exit code for the parent."""
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self.count):
                self._start(index)
            while self._children:
                self._reap()
                time.sleep(0.2)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _start(self, index: int) -> None:
        child = self._context.Process(
            target=self.main, args=(index,), name=f"cspulse-worker-{index}"
        )
        child.start()
        self._children[index] = child
        log.info("worker %d started (pid %s)", index, child.pid)

    def _reap(self) -> None:
        for index, child in list(self._children.items()):
            if child.is_alive():
                continue
            del self._children[index]
            if self.stopping:
                log.info("worker %d stopped (exit code %s)", index, child.exitcode)
                continue
            log.error(
                "worker %d exited with code %s; starting it again in %.0fs",
                index,
                child.exitcode,
                RESTART_DELAY,
            )
            time.sleep(RESTART_DELAY)
            self._start(index)

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        """Forward the signal: each child finishes its batch, commits and leaves the group."""
        self.stopping = True
        for child in self._children.values():
            if child.pid is not None and child.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signum)
