"""Plan segments: every business counter is also kept per subscription plan.

A field ``tickets_opened`` counts everything; ``tickets_opened@team`` counts
the events of accounts on plan ``team`` when the event was applied. Plan
labels are bounded (see :data:`PLAN_LABEL_LUA` in the store): past the
configured number of plans, new ones are reported as ``other``; accounts
with no known plan as ``none``.
"""

from __future__ import annotations

from collections.abc import Mapping

SEP = "@"
ALL = "all"
OTHER = "other"
NONE = "none"


def segmented(name: str, plan: str) -> str:
    return f"{name}{SEP}{plan}"


def split(field: str) -> tuple[str, str]:
    """(base name, plan label) of a stored field; plain fields belong to ``all``."""
    name, sep, plan = field.partition(SEP)
    return (name, plan) if sep else (name, ALL)


def with_plan(
    values: Mapping[tuple[str, float], float], plan: str | None
) -> dict[tuple[str, float], float]:
    """A contribution plus its copy under the plan's segment."""
    out = dict(values)
    if plan:
        for (name, ts), amount in values.items():
            out[(segmented(name, plan), ts)] = amount
    return out


def gauges_with_plan(values: Mapping[str, float], plan: str | None) -> dict[str, float]:
    out = dict(values)
    if plan:
        for name, amount in values.items():
            out[segmented(name, plan)] = amount
    return out
