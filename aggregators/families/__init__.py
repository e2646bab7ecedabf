"""One module per event family: how its events change state and buckets.

Every family implements :class:`~aggregators.families.base.Family`; the batch
planner in :mod:`aggregators.batch` drives them all the same way, so there is
one code path from event to Redis update whatever the metric.
"""

from aggregators.families.base import Family
from aggregators.families.billing import BillingFamily
from aggregators.families.sessions import SessionFamily
from aggregators.families.surveys import SurveyFamily
from aggregators.families.tickets import TicketFamily

FAMILIES: dict[str, Family] = {
    "tickets": TicketFamily(),
    "surveys": SurveyFamily(),
    "logins": SessionFamily(),
    "billing": BillingFamily(),
}
"""Topic suffix -> the family that handles its events."""

__all__ = ["FAMILIES", "Family"]
