"""Typed per-account health facts, one struct per event family.

Each family keeps its own facts for an account inside its partition's state
(see :meth:`aggregators.families.base.Family.facts`); after a batch the
worker mirrors them into one hash per account, where
:mod:`aggregators.health` scores them. Facts are encoded as JSON (msgspec).
"""

from __future__ import annotations

import msgspec

from schemas.models import BILLING as BILLING
from schemas.models import FAMILY_NAMES as FAMILY_NAMES
from schemas.models import LOGINS as LOGINS
from schemas.models import SURVEYS as SURVEYS
from schemas.models import TICKETS as TICKETS

RECENT_TIMES = 50
"""How many of the most recent failure/contraction times an account keeps."""
ACTIVE_DAYS_KEPT = 31


class Facts(msgspec.Struct, kw_only=True):
    """What every family knows of an account: its latest event time."""

    last: float = 0.0

    def persistent(self) -> bool:
        """True when the facts must outlive the retention (they describe the present)."""
        return False


class TicketFacts(Facts, kw_only=True):
    """Sums over the account's tickets: open now, resolved, resolved at first contact."""

    open: float = 0.0
    resolved: float = 0.0
    fcr: float = 0.0

    def persistent(self) -> bool:
        """An open ticket stays open however quiet the account: keep its count."""
        return self.open > 0


class SurveyFacts(Facts, kw_only=True):
    """The account's NPS answers (score sum, count) and CSAT answers (satisfied, count)."""

    nps_sum: float = 0.0
    nps_answers: int = 0
    csat_satisfied: int = 0
    csat_answers: int = 0


class UsageFacts(Facts, kw_only=True):
    """Active days (UTC day index) of the account, most recent last.

    ``last`` is the latest session event time: with ``paying`` from billing
    it places the account in the paying-active index.
    """

    days: list[int] = msgspec.field(default_factory=list)


class BillingFacts(Facts, kw_only=True):
    """Recent payment failure and contraction times; whether it pays now, on which plan."""

    failures: list[float] = msgspec.field(default_factory=list)
    contractions: list[float] = msgspec.field(default_factory=list)
    paying: bool = False
    plan: str = "none"
    """The plan segment its MRR counts in (its largest paying subscription's plan)."""
    subscribed: str | None = None
    """Plan label of its most recent subscription event that named one (shown on the
    account's page and in the at-risk list)."""


class AccountFacts(msgspec.Struct, kw_only=True):
    """Every family's facts of one account (a family with no facts yet: its defaults)."""

    tickets: TicketFacts = msgspec.field(default_factory=TicketFacts)
    surveys: SurveyFacts = msgspec.field(default_factory=SurveyFacts)
    logins: UsageFacts = msgspec.field(default_factory=UsageFacts)
    billing: BillingFacts = msgspec.field(default_factory=BillingFacts)

    @property
    def last(self) -> float:
        return max(self.tickets.last, self.surveys.last, self.logins.last, self.billing.last)


FACT_TYPES: dict[str, type[Facts]] = {
    TICKETS: TicketFacts,
    SURVEYS: SurveyFacts,
    LOGINS: UsageFacts,
    BILLING: BillingFacts,
}

_ENCODER = msgspec.json.Encoder()
_TICKETS = msgspec.json.Decoder(TicketFacts)
_SURVEYS = msgspec.json.Decoder(SurveyFacts)
_LOGINS = msgspec.json.Decoder(UsageFacts)
_BILLING = msgspec.json.Decoder(BillingFacts)


def encode_facts(facts: Facts) -> bytes:
    return _ENCODER.encode(facts)


def merge(raw: dict[str, bytes]) -> AccountFacts:
    """An account's facts from its mirror hash (family -> encoded facts); other fields skipped."""
    out = AccountFacts()
    if (tickets := raw.get(TICKETS)) is not None:
        out.tickets = _TICKETS.decode(tickets)
    if (surveys := raw.get(SURVEYS)) is not None:
        out.surveys = _SURVEYS.decode(surveys)
    if (logins := raw.get(LOGINS)) is not None:
        out.logins = _LOGINS.decode(logins)
    if (billing := raw.get(BILLING)) is not None:
        out.billing = _BILLING.decode(billing)
    return out
