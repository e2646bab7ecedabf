"""``cspulse worker`` with extra Faust settings, to try tunings without editing ``streams/``.

Why: the worker's Faust settings live in :func:`streams.app.faust_settings`;
a benchmark that wants to know whether, say, a larger fetch or buffer lifts
throughput needs the exact worker with only those settings changed. This
wraps that function with the JSON object in ``BENCH_WORKER_SETTINGS`` merged
over its result, then runs the ordinary CLI. ``BENCH_LOOP=uvloop`` also
installs uvloop's event loop policy first (uvloop is not a cspulse
dependency: install it into the environment to try it), and
``BENCH_FAUST_PATCH`` applies experiments from :mod:`bench.faust_patches`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import orjson

import streams.app
from bench.faust_patches import apply_from_env
from streams.cli import main as cli_main
from streams.config import Settings

SETTINGS_ENV = "BENCH_WORKER_SETTINGS"
LOOP_ENV = "BENCH_LOOP"


def patch_settings(overrides: dict[str, Any]) -> None:
    """Make every Worker built from now on get ``overrides`` on top of cspulse's settings."""
    original = streams.app.faust_settings

    def tuned(settings: Settings, bootstrap: str) -> dict[str, Any]:
        return original(settings, bootstrap) | overrides

    streams.app.faust_settings = tuned


def main() -> None:
    patch_settings(orjson.loads(os.environ.get(SETTINGS_ENV, "{}")))
    apply_from_env()
    if os.environ.get(LOOP_ENV) == "uvloop":
        import uvloop

        uvloop.install()
    sys.argv = ["cspulse", "worker"]
    cli_main()


if __name__ == "__main__":
    main()
