"""cspulse's Lua scripts avoid what corrupts Redis 6.2 (see test_redis_versions.py)."""

from __future__ import annotations

import re

import pytest

from aggregators import health_index, plan_directory, reader, store


@pytest.mark.parametrize(
    "script",
    [
        store.APPLY_LUA,
        plan_directory.PLAN_LABEL_LUA,
        reader.READ_LUA,
        health_index.MIRROR_LUA,
        health_index.INDEX_LUA,
    ],
    ids=["apply", "plan-labels", "read", "health-mirror", "health-index"],
)
def test_no_cspulse_script_calls_incrbyfloat(script: str) -> None:
    code = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    assert not re.search(r"['\"]INCRBYFLOAT['\"]", code, re.IGNORECASE)
