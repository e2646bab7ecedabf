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

__all__ = ["FAMILIES", "Family"]
