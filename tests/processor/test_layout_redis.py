"""``cs:layout`` against a real Redis: the first worker records it, every process checks it.

A Redis of another layout version is refused in one line that says what to
do, by the worker and by ``cspulse status``, before they touch anything.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from aggregators import keys
from aggregators.layout import LAYOUT_VERSION, LayoutMismatch, check_layout, claim_layout
from streams.demo.embedded import free_port
from tests.processor.conftest import Rig


def test_the_first_worker_records_the_version_and_others_accept_it(rig: Rig) -> None:
    client = rig.client()
    check_layout(client)  # an empty Redis passes
    assert client.get(keys.LAYOUT) is None
    claim_layout(client)
    assert client.get(keys.LAYOUT) == str(LAYOUT_VERSION).encode()
    claim_layout(client)
    check_layout(client)


def test_another_version_is_refused_in_one_line(rig: Rig) -> None:
    client = rig.client()
    client.set(keys.LAYOUT, LAYOUT_VERSION + 1)
    for check in (check_layout, claim_layout):
        with pytest.raises(LayoutMismatch) as refused:
            check(client)
        line = str(refused.value)
        assert "\n" not in line
        assert f"layout version {LAYOUT_VERSION + 1}" in line
        assert "Upgrading the Redis layout" in line
    assert client.get(keys.LAYOUT) == str(LAYOUT_VERSION + 1).encode()  # left as it was


def cspulse(rig: Rig, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CSPULSE_REDIS_URL": rig.url,
        "CSPULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",  # never reached
    }
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", [["worker", "--connect-timeout", "5"], ["status"]])
def test_the_worker_and_the_cli_refuse_another_version(rig: Rig, command: list[str]) -> None:
    rig.client().set(keys.LAYOUT, LAYOUT_VERSION + 1)
    done = cspulse(rig, *command)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"layout version {LAYOUT_VERSION + 1}" in done.stderr, done.stderr
    assert "Upgrading the Redis layout" in done.stderr
