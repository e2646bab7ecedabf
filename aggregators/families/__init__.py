"""One module per event family: how its events change state and buckets.

Each module builds a :class:`~aggregators.families.base.Family` from its
counter, entity and facts parts; the batch planner in
:mod:`aggregators.batch` drives them all the same way, so there is one code
path from event to Redis update whatever the metric.
"""

from typing import Any

from aggregators.families import billing, sessions, surveys, tickets
from aggregators.families.base import Family

FAMILIES: dict[str, Family[Any, Any]] = {
    family.name: family
    for family in (tickets.FAMILY, surveys.FAMILY, sessions.FAMILY, billing.FAMILY)
}
"""Family name (the suffix of its topic, see :data:`aggregators.facts.FAMILY_NAMES`) -> family."""


def declared_fields() -> frozenset[str]:
    """Every counter, gauge and distinct-count name the registry's families declare."""
    return frozenset(name for family in FAMILIES.values() for name in family.fields)


__all__ = ["FAMILIES", "Family", "declared_fields"]
