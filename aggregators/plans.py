"""Plan segments: every business counter is also kept per subscription plan.

A field ``tickets_opened`` counts everything; ``tickets_opened@team`` counts
the events of accounts on plan ``team`` when the event was applied. Plan
labels are bounded (see :data:`PLAN_LABEL_LUA` in the store): past the
configured number of plans, new ones are reported as ``other``; accounts
with no known plan as ``none``. A plan whose name would read as one of these
reserved labels, or contains the separator, is reported under an escaped
label (:func:`label_of`), so no plan can replace the whole-base series.
"""

from __future__ import annotations

SEP = "@"
ALL = "all"
OTHER = "other"
NONE = "none"
RESERVED = frozenset({ALL, OTHER, NONE})
ESCAPE = "~"


def segmented(name: str, plan: str) -> str:
    return f"{name}{SEP}{plan}"


def label_of(plan: str) -> str:
    """The label a raw plan name is reported under: itself, unless it is reserved.

    ``all``, ``other``, ``none``, and any name containing the separator or
    starting with the escape character become ``~`` + the name with ``~``
    doubled and ``@`` written ``~a``: one-to-one, never reserved, no separator.
    """
    if plan not in RESERVED and SEP not in plan and not plan.startswith(ESCAPE):
        return plan
    return ESCAPE + plan.replace(ESCAPE, ESCAPE * 2).replace(SEP, ESCAPE + "a")


def split(field: str) -> tuple[str, str]:
    """(base name, plan label) of a stored field; plain fields belong to ``all``."""
    name, sep, plan = field.partition(SEP)
    return (name, plan) if sep else (name, ALL)
