"""Redis's time per Lua script, split into its commands and the script's own work.

Why: ``INFO commandstats`` gives ``evalsha`` one line for every script, with the
commands the scripts run counted again under their own names; it cannot say which
script costs what, nor how much of a script's time is the Lua around its
``redis.call``s (unpacking arguments, loops, converting replies). Redis's SLOWLOG with
a threshold of 0 logs every command with its duration, the commands a script runs
before the script itself; so each ``EVALSHA`` owns the commands logged since the one
before it. Logging every command costs Redis a little: use it to compare scripts, not
for the headline µs per event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aggregators.distinct import DISTINCT_LUA
from aggregators.health_index import INDEX_LUA, MIRROR_LUA
from aggregators.plan_directory import PLAN_LABEL_LUA
from aggregators.reader import READ_LUA
from aggregators.store import APPLY_LUA, HISTORIES_LUA, SEEN_LUA

SLOWLOG_LENGTH = 500_000
"""Entries Redis keeps while measuring (each holds up to 32 arguments)."""


def script_names() -> dict[str, str]:
    """Each of cspulse's scripts by its SHA1, as ``EVALSHA`` names it."""
    sources = {
        "apply": APPLY_LUA,
        "seen": SEEN_LUA,
        "histories": HISTORIES_LUA,
        "index": INDEX_LUA,
        "mirror": MIRROR_LUA,
        "plan_label": PLAN_LABEL_LUA,
        "distinct": DISTINCT_LUA,
        "read": READ_LUA,
    }
    return {hashlib.sha1(text.encode()).hexdigest(): name for name, text in sources.items()}


@dataclass
class ScriptCost:
    """One script's calls over a measurement; times in µs, as SLOWLOG gives them."""

    calls: int = 0
    total: int = 0
    commands: int = 0
    in_commands: int = 0

    @property
    def own(self) -> int:
        """The script's time outside its commands: Lua, arguments and replies."""
        return self.total - self.in_commands


OUTSIDE = "(no script)"
"""Commands sent on their own, counted one call each."""


def by_script(
    entries: Iterable[Mapping[str, Any]], names: Mapping[str, str]
) -> dict[str, ScriptCost]:
    """Each script's cost from SLOWLOG entries (any order; ``id``, ``duration``,
    ``command``, ``client_address`` as redis-py returns them). A script's commands are
    logged from a client without an address (``?:0``); those before the first
    ``EVALSHA`` logged may belong to a script whose entry was dropped."""
    costs: dict[str, ScriptCost] = {}
    pending: list[int] | None = None  # durations since the last EVALSHA; None before the first
    for entry in sorted(entries, key=lambda e: e["id"]):
        words = entry["command"].split(b" ", 2)
        if words[0].upper() == b"EVALSHA":
            if pending is not None:
                sha = words[1].decode() if len(words) > 1 else "?"
                cost = costs.setdefault(names.get(sha, sha[:8]), ScriptCost())
                cost.calls += 1
                cost.total += entry["duration"]
                cost.commands += len(pending)
                cost.in_commands += sum(pending)
            pending = []
        elif _in_script(entry):
            if pending is not None:
                pending.append(entry["duration"])
        else:
            alone = costs.setdefault(OUTSIDE, ScriptCost())
            alone.calls += 1
            alone.total += entry["duration"]
            alone.commands += 1
            alone.in_commands += entry["duration"]
    return costs


def _in_script(entry: Mapping[str, Any]) -> bool:
    address = entry.get("client_address", b"")
    return (address.decode() if isinstance(address, bytes) else address) == "?:0"


def script_lines(costs: Mapping[str, ScriptCost]) -> list[str]:
    """Per script, costliest first: calls per apply (one apply per partition batch), µs
    per call, and how much of it is the commands and how much the script's own."""
    applies = costs["apply"].calls if "apply" in costs else 0
    return [
        f"  {name:<11} per apply {c.calls / applies if applies else 0:5.2f}  "
        f"µs/call {c.total / c.calls:7.1f}: {c.commands / c.calls:6.1f} commands "
        f"{c.in_commands / c.calls:7.1f}, the script's own {c.own / c.calls:7.1f}"
        for name, c in sorted(costs.items(), key=lambda kv: -kv[1].total)
    ]
