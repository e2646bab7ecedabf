"""Test-suite wide settings.

The suite runs on two xdist workers (``scripts/test``). Each test module goes
to one worker as a whole, so a module-scoped fixture (a published scenario, a
started cluster) is built once; tests that share the session-wide e2e
``world`` name that group themselves.
"""

from __future__ import annotations

import os

import pytest

# A demo started with scripts/run leaves its addresses in .cspulse.env while it
# runs; commands the tests start must not pick them up (streams/envfile.py).
os.environ.setdefault("CSPULSE_ENV_FILE", os.devnull)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
