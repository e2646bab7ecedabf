"""Typed `data` payloads of every event type in the contract (docs/contract/events.md).

The Structs are the single source of truth: `schemas.validate` decodes into
them and `schemas.generate` derives the published JSON Schema files from them,
so producers and cspulse cannot drift apart. Unknown fields are ignored
(`forbid_unknown_fields=False`) for forward compatibility. The Structs are
frozen and untracked by the GC (`gc=False`): they hold only scalars, so they
can never be part of a reference cycle, and skipping GC tracking is cheaper
at 100k+ events/s.
"""

from typing import Annotated, Final, Literal

import msgspec

# --- field types -----------------------------------------------------------

CONTROL_CHARACTERS: Final = "[\\u0000-\\u001f\\u007f-\\u009f]"
"""Regex (Python and ECMA-262 alike) of the C0 and C1 control characters and DEL.

Ids, plans, categories and reasons must contain none: they end up in Redis
keys, Prometheus label values, dead-letter headers and log lines, where a
newline or an escape sequence forges lines or corrupts a terminal. The JSON
Schema says so as `not: {pattern}`, which means the same in every regex
engine (an anchored `^...$` does not: Python's `$` also matches before a
final newline). msgspec does not check it while decoding (a pattern costs
about 0.6 µs per field there); `schemas.validate` checks the few messages
that can contain such a character at all."""

PRINTABLE: Final = {"not": {"pattern": CONTROL_CHARACTERS}}
"""The JSON Schema rule of the strings that must hold no control character."""

ID_MAX: Final = 128
NAME_MAX: Final = 64
REASON_MAX: Final = 256

Id = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=ID_MAX,
        description="Identifier: 1-128 characters, no control characters.",
        extra_json_schema=PRINTABLE,
    ),
]
"""Identifiers (accounts, tickets, users, ...): an empty string identifies
nothing; the bound keeps Redis keys and sets of ids small."""

EventId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=ID_MAX,
        description="Unique per event; the producer's idempotency key. 1-128 characters, "
        "no control characters.",
        extra_json_schema=PRINTABLE,
    ),
]
"""The envelope `id`: 1-128 characters, per the contract."""

Plan = Annotated[
    str,
    msgspec.Meta(
        max_length=NAME_MAX,
        description="Plan name: at most 64 characters, no control characters.",
        extra_json_schema=PRINTABLE,
    ),
]
"""A subscription plan: it becomes a `plan` label value and part of Redis keys,
so it is short and printable. The contract does not require it to be non-empty,
so an empty name is a plan like any other."""

Category = Annotated[
    str,
    msgspec.Meta(
        max_length=NAME_MAX,
        description="Cost category (e.g. payroll, tooling, training): at most 64 characters, "
        "no control characters.",
        extra_json_schema=PRINTABLE,
    ),
]

Reason = Annotated[
    str,
    msgspec.Meta(
        max_length=REASON_MAX,
        description="Why it was canceled, free text: at most 256 characters, "
        "no control characters.",
        extra_json_schema=PRINTABLE,
    ),
]

Source = Annotated[str, msgspec.Meta(min_length=1, description="The system that sent it.")]

Comment = Annotated[
    str,
    msgspec.Meta(max_length=10_000, description="Free text in any language, <= 10,000 chars."),
]

Cents = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=2**63 - 1,
        description="Minor units (e.g. cents), >= 0, at most a signed 64-bit integer.",
    ),
]
"""Money in minor units. The upper bound is int64 max: larger values fit no
producer's native integer type and would overflow Redis INCRBY downstream."""

Currency = Annotated[
    str,
    msgspec.Meta(
        description=(
            "ISO 4217 code; must equal cspulse's configured reporting currency "
            "(default USD), compared exactly."
        )
    ),
]

Channel = Literal["email", "chat", "phone", "web", "social", "other"]
Author = Literal["agent", "customer"]
SurveyKind = Literal["nps", "csat", "ces"]
ScaleMax = Literal[5, 7, 10]
Platform = Literal["web", "ios", "android", "desktop", "api", "other"]

# --- survey scales -----------------------------------------------------------

FIXED_SCALES: Final[dict[str, tuple[int, int]]] = {"nps": (0, 10), "ces": (1, 7)}
"""Kinds whose scale is fixed by definition (Bain NPS 0-10, CES 1-7)."""

CSAT_MIN: Final = 1
"""CSAT scales start at 1: the common 1-5 / 1-7 / 1-10 "rate us" scales have no
0, and the satisfied thresholds in metrics.md (>= 4 of 5, ...) assume 1-based
scales. A 0 is far more likely a producer bug than an answer, so it is rejected."""

CSAT_DEFAULT_MAX: Final = 5


def score_bounds(kind: SurveyKind, scale_max: int | None) -> tuple[int, int]:
    """Inclusive (min, max) of a valid score for `kind` and the given scale_max."""
    fixed = FIXED_SCALES.get(kind)
    if fixed is not None:
        return fixed
    return CSAT_MIN, scale_max if scale_max is not None else CSAT_DEFAULT_MAX


# --- payloads ---------------------------------------------------------------


class EventData(msgspec.Struct, frozen=True, kw_only=True, gc=False, forbid_unknown_fields=False):
    """Fields common to every event's data."""

    account_id: Id


class PricedData(EventData, frozen=True, kw_only=True, gc=False):
    """Data carrying money: its `currency` must be the reporting currency."""

    currency: Currency


class TicketOpened(EventData, frozen=True, kw_only=True, gc=False):
    """A support ticket was opened."""

    ticket_id: Id
    channel: Channel = "other"
    user_id: Id | None = None


class TicketReplied(EventData, frozen=True, kw_only=True, gc=False):
    """A reply on a ticket; `agent_id` is required when `author` is agent."""

    ticket_id: Id
    author: Author
    agent_id: Id | None = None


class TicketResolved(EventData, frozen=True, kw_only=True, gc=False):
    """A ticket was resolved."""

    ticket_id: Id
    agent_id: Id | None = None


class TicketReopened(EventData, frozen=True, kw_only=True, gc=False):
    """A resolved ticket was reopened."""

    ticket_id: Id


class SurveyAnswered(EventData, frozen=True, kw_only=True, gc=False):
    """A survey answer. Scales: nps 0-10, ces 1-7, csat 1..scale_max (5, 7 or 10,
    default 5); a score off its scale is invalid. scale_max, when given for nps or
    ces, must be that kind's fixed maximum (10, 7). After validation scale_max is
    always set to the effective maximum."""

    kind: SurveyKind
    score: float
    scale_max: ScaleMax | None = None
    comment: Comment | None = None
    user_id: Id | None = None
    ticket_id: Id | None = None
    agent_id: Id | None = None


class SessionStarted(EventData, frozen=True, kw_only=True, gc=False):
    """A product session started."""

    session_id: Id
    user_id: Id
    platform: Platform = "other"


class SessionHeartbeat(EventData, frozen=True, kw_only=True, gc=False):
    """A product session is still active."""

    session_id: Id
    user_id: Id


class SessionEnded(EventData, frozen=True, kw_only=True, gc=False):
    """A product session ended."""

    session_id: Id
    user_id: Id


class SubscriptionStarted(PricedData, frozen=True, kw_only=True, gc=False):
    """A subscription started; a trial contributes 0 MRR until trial.converted."""

    subscription_id: Id
    plan: Plan
    mrr_cents: Cents
    trial: bool = False


class SubscriptionChanged(PricedData, frozen=True, kw_only=True, gc=False):
    """A subscription changed plan or price; mrr_cents is the new value."""

    subscription_id: Id
    plan: Plan
    mrr_cents: Cents


class SubscriptionRenewed(EventData, frozen=True, kw_only=True, gc=False):
    """A subscription renewed."""

    subscription_id: Id


class SubscriptionCanceled(EventData, frozen=True, kw_only=True, gc=False):
    """A subscription was canceled, effective at the event time; at_term_end true
    means the customer let it lapse at renewal."""

    subscription_id: Id
    at_term_end: bool = False
    reason: Reason | None = None


class TrialConverted(PricedData, frozen=True, kw_only=True, gc=False):
    """A trial became a paying subscription."""

    subscription_id: Id
    plan: Plan
    mrr_cents: Cents


class TrialExpired(EventData, frozen=True, kw_only=True, gc=False):
    """A trial ended without converting."""

    subscription_id: Id


class InvoicePaid(PricedData, frozen=True, kw_only=True, gc=False):
    """An invoice was paid."""

    invoice_id: Id
    amount_cents: Cents


class InvoiceFailed(PricedData, frozen=True, kw_only=True, gc=False):
    """An invoice payment failed."""

    invoice_id: Id
    amount_cents: Cents


class CostRecorded(PricedData, frozen=True, kw_only=True, gc=False):
    """Cost of customer-success work (e.g. payroll, tooling, training), for
    retention cost."""

    amount_cents: Cents
    category: Category


AnyData = (
    TicketOpened
    | TicketReplied
    | TicketResolved
    | TicketReopened
    | SurveyAnswered
    | SessionStarted
    | SessionHeartbeat
    | SessionEnded
    | SubscriptionStarted
    | SubscriptionChanged
    | SubscriptionRenewed
    | SubscriptionCanceled
    | TrialConverted
    | TrialExpired
    | InvoicePaid
    | InvoiceFailed
    | CostRecorded
)
"""Every concrete payload, for exhaustive `match` statements."""

TYPE_TO_DATA: Final[dict[str, type[EventData]]] = {
    "ticket.opened": TicketOpened,
    "ticket.replied": TicketReplied,
    "ticket.resolved": TicketResolved,
    "ticket.reopened": TicketReopened,
    "survey.answered": SurveyAnswered,
    "session.started": SessionStarted,
    "session.heartbeat": SessionHeartbeat,
    "session.ended": SessionEnded,
    "subscription.started": SubscriptionStarted,
    "subscription.changed": SubscriptionChanged,
    "subscription.renewed": SubscriptionRenewed,
    "subscription.canceled": SubscriptionCanceled,
    "trial.converted": TrialConverted,
    "trial.expired": TrialExpired,
    "invoice.paid": InvoicePaid,
    "invoice.failed": InvoiceFailed,
    "cost.recorded": CostRecorded,
}
"""Event `type` -> its data Struct: exactly the types of the contract."""

TICKETS: Final = "tickets"
SURVEYS: Final = "surveys"
LOGINS: Final = "logins"
BILLING: Final = "billing"
FAMILY_NAMES: Final = (TICKETS, SURVEYS, LOGINS, BILLING)
"""The event families, named by the suffix of the topic they travel on (``cs.tickets``
...). Every other list of families (topics, state families, health facts, the
generator) derives from this one."""

TOPIC_TYPES: Final[dict[str, frozenset[str]]] = {
    TICKETS: frozenset(t for t in TYPE_TO_DATA if t.startswith("ticket.")),
    SURVEYS: frozenset({"survey.answered"}),
    LOGINS: frozenset(t for t in TYPE_TO_DATA if t.startswith("session.")),
    BILLING: frozenset(
        t for t in TYPE_TO_DATA if t.startswith(("subscription.", "trial.", "invoice.", "cost."))
    ),
}
"""Topic name suffix (topic names are configurable, e.g. "cs.tickets") -> its types."""

FAMILY_OF_TYPE: Final[dict[str, str]] = {
    event_type: family for family, types in TOPIC_TYPES.items() for event_type in types
}
"""Event ``type`` -> the family (topic suffix) it travels on."""
