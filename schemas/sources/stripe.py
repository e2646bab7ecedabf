"""Stripe events -> billing events of the contract.

``customer.subscription.created/updated/deleted`` become subscription and
trial events, ``invoice.paid`` and ``invoice.payment_failed`` invoices;
every other type is :class:`Ignored`. MRR is the subscription's recurring
amount normalised to a month (ChartMogul's convention): per item, price x
quantity; yearly / 12, weekly x 52 / 12, daily x 365 / 12, each divided by
``interval_count``; then recurring coupons (``forever``, ``repeating``) are
applied; a ``once`` coupon is a one-off and leaves MRR alone. Amounts are
computed as exact fractions and rounded to the cent once, at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any, Final, Literal

import msgspec

from schemas.sources import Draft, Ignored, Mapped, Unmappable, decode_error

SOURCE: Final = "stripe"
PAYING: Final = frozenset({"active", "past_due", "unpaid"})
"""Statuses whose subscription counts in MRR (Stripe keeps billing past_due and unpaid)."""
MONTHS_PER_INTERVAL: Final[dict[str, Fraction]] = {
    "day": Fraction(12, 365),
    "week": Fraction(12, 52),
    "month": Fraction(1),
    "year": Fraction(12),
}
"""How many months one interval lasts: an amount per interval / this = per month."""
PRICING_FIELDS: Final = frozenset({"items", "plan", "quantity", "discount", "discounts"})
"""``previous_attributes`` keys of an update that can move MRR or the plan."""

PlanFrom = Literal["nickname", "product", "price"]


@dataclass(frozen=True)
class StripeConfig:
    """Where the account and the plan label come from."""

    account_key: str = "account_id"
    """Metadata key naming the account (customer's, else the object's); else the customer id."""
    plan_from: PlanFrom = "nickname"
    """``nickname``: the price's nickname, else the product's name, else the product id;
    ``product``: the product's name, else its id; ``price``: the price id."""


class Named(msgspec.Struct, frozen=True):
    """An expanded object with an id, a name and metadata (product, customer)."""

    id: str
    name: str | None = None
    metadata: dict[str, str] = {}


class Recurring(msgspec.Struct, frozen=True):
    interval: Literal["day", "week", "month", "year"]
    interval_count: int = 1
    usage_type: str = "licensed"


class Price(msgspec.Struct, frozen=True):
    id: str
    currency: str
    nickname: str | None = None
    product: str | Named | None = None
    unit_amount: int | None = None
    unit_amount_decimal: str | None = None
    recurring: Recurring | None = None


class Item(msgspec.Struct, frozen=True):
    price: Price
    quantity: int | None = 1


class Items(msgspec.Struct, frozen=True):
    data: list[Item]


class Coupon(msgspec.Struct, frozen=True):
    id: str
    percent_off: float | None = None
    amount_off: int | None = None
    duration: str = "forever"


class DiscountSource(msgspec.Struct, frozen=True):
    coupon: str | Coupon | None = None


class Discount(msgspec.Struct, frozen=True):
    """A discount: ``coupon`` in API versions before 2025, ``source.coupon`` since."""

    coupon: Coupon | None = None
    source: DiscountSource | None = None

    def expanded(self) -> Coupon | None:
        if self.coupon is not None:
            return self.coupon
        found = self.source.coupon if self.source else None
        return found if isinstance(found, Coupon) else None


class CancellationDetails(msgspec.Struct, frozen=True):
    reason: str | None = None
    feedback: str | None = None


class Subscription(msgspec.Struct, frozen=True):
    id: str
    customer: str | Named
    status: str
    currency: str
    items: Items
    metadata: dict[str, str] = {}
    discount: Discount | None = None
    discounts: list[str | Discount] = []
    trial_end: int | None = None
    ended_at: int | None = None
    canceled_at: int | None = None
    cancel_at_period_end: bool = False
    cancellation_details: CancellationDetails | None = None


class SubscriptionDetails(msgspec.Struct, frozen=True):
    metadata: dict[str, str] | None = None


class InvoiceParent(msgspec.Struct, frozen=True):
    subscription_details: SubscriptionDetails | None = None


class Invoice(msgspec.Struct, frozen=True):
    id: str
    customer: str | Named
    currency: str
    amount_paid: int = 0
    amount_due: int = 0
    subscription_details: SubscriptionDetails | None = None
    parent: InvoiceParent | None = None

    def metadata(self) -> dict[str, str]:
        """The subscription's metadata Stripe copies onto the invoice (either API shape)."""
        details = self.subscription_details or (self.parent and self.parent.subscription_details)
        return (details.metadata if details else None) or {}


class EventData(msgspec.Struct, frozen=True):
    object: msgspec.Raw
    previous_attributes: dict[str, Any] | None = None


class Event(msgspec.Struct, frozen=True):
    id: str
    type: str
    created: int
    data: EventData


SUBSCRIPTION_TYPES: Final = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    }
)
INVOICE_TYPES: Final = {"invoice.paid": "invoice.paid", "invoice.payment_failed": "invoice.failed"}


def map_event(body: bytes, config: StripeConfig = StripeConfig()) -> Mapped:
    """One Stripe event (the webhook body, or one element of an export) as contract events."""
    try:
        event = msgspec.json.decode(body, type=Event)
        if event.type in SUBSCRIPTION_TYPES:
            sub = msgspec.json.decode(event.data.object, type=Subscription)
            return _subscription(event, sub, config)
        if event.type in INVOICE_TYPES:
            invoice = msgspec.json.decode(event.data.object, type=Invoice)
            return [_invoice(event, invoice, config)]
    except msgspec.DecodeError as exc:
        return decode_error(exc)
    return Ignored(event.type)


def _subscription(event: Event, sub: Subscription, config: StripeConfig) -> Mapped:
    previous = event.data.previous_attributes or {}
    kind = event.type.rsplit(".", 1)[1]
    if kind == "deleted" and sub.status == "incomplete_expired":
        return Ignored(event.type, "never paid")  # it never started, so nothing ends
    if kind == "deleted":
        return [_ended(event, sub, config)]
    try:
        mrr = monthly_cents(sub)
    except ValueError as exc:
        return Unmappable("unsupported_price", str(exc))
    contract = _subscription_type(kind, sub.status, previous)
    if contract is None:
        return Ignored(event.type, f"status {sub.status}")
    data: dict[str, Any] = {
        "subscription_id": sub.id,
        "plan": plan_label(sub, config.plan_from),
        "mrr_cents": mrr,
        "currency": sub.currency.upper(),
    }
    if contract == "subscription.started":
        data["trial"] = sub.status == "trialing"
    return [_draft(event, contract, sub.customer, sub.metadata, config, data)]


def _subscription_type(kind: str, status: str, previous: dict[str, Any]) -> str | None:
    """The contract type of a created or updated subscription, or None to ignore it."""
    before = previous.get("status")
    if kind == "created":
        return "subscription.started" if status in PAYING or status == "trialing" else None
    if before == "trialing" and status in PAYING:
        return "trial.converted"
    if before in ("incomplete", "incomplete_expired") and status in PAYING | {"trialing"}:
        return "subscription.started"  # the first payment of an incomplete subscription
    if PRICING_FIELDS & previous.keys() and (status in PAYING or status == "trialing"):
        return "subscription.changed"
    return None


def _ended(event: Event, sub: Subscription, config: StripeConfig) -> Draft:
    """A deleted subscription: a trial that never paid expires, anything else is canceled."""
    ended = sub.ended_at or sub.canceled_at or event.created
    if sub.trial_end is not None and ended <= sub.trial_end:
        return _draft(
            event, "trial.expired", sub.customer, sub.metadata, config, {"subscription_id": sub.id}
        )
    data: dict[str, Any] = {"subscription_id": sub.id, "at_term_end": sub.cancel_at_period_end}
    details = sub.cancellation_details
    reason = details and (details.feedback or details.reason)
    if reason:
        data["reason"] = reason[:256]
    return _draft(event, "subscription.canceled", sub.customer, sub.metadata, config, data)


def _invoice(event: Event, invoice: Invoice, config: StripeConfig) -> Draft:
    paid = event.type == "invoice.paid"
    data = {
        "invoice_id": invoice.id,
        "amount_cents": invoice.amount_paid if paid else invoice.amount_due,
        "currency": invoice.currency.upper(),
    }
    contract = INVOICE_TYPES[event.type]
    return _draft(event, contract, invoice.customer, invoice.metadata(), config, data)


def _draft(
    event: Event,
    contract: str,
    customer: str | Named,
    metadata: dict[str, str],
    config: StripeConfig,
    data: dict[str, Any],
) -> Draft:
    account = account_of(customer, metadata, config.account_key)
    return Draft(f"{SOURCE}:{event.id}", SOURCE, contract, float(event.created), account, data)


def account_of(customer: str | Named, metadata: dict[str, str], key: str) -> str:
    """The customer's metadata ``key`` (when the customer is expanded), else the
    object's own metadata ``key``, else the customer id."""
    if isinstance(customer, Named) and customer.metadata.get(key):
        return customer.metadata[key]
    if metadata.get(key):
        return metadata[key]
    return customer.id if isinstance(customer, Named) else customer


def item_monthly(item: Item) -> Fraction:
    """One item's recurring amount per month, in cents (0 for metered usage)."""
    price = item.price
    if price.recurring is None:
        raise ValueError(f"price {price.id} is not recurring")
    if price.recurring.usage_type == "metered":
        return Fraction(0)
    if price.unit_amount_decimal is not None:
        unit = Fraction(Decimal(price.unit_amount_decimal))
    elif price.unit_amount is not None:
        unit = Fraction(price.unit_amount)
    else:
        raise ValueError(f"price {price.id} has no unit amount (tiered pricing is not mapped)")
    months = MONTHS_PER_INTERVAL[price.recurring.interval] * price.recurring.interval_count
    return unit * (item.quantity or 0) / months


def monthly_cents(sub: Subscription) -> int:
    """The subscription's MRR in cents: items normalised to a month, recurring coupons off."""
    gross = sum((item_monthly(i) for i in sub.items.data), Fraction(0))
    net = gross
    for coupon in _coupons(sub):
        if coupon.duration == "once":
            continue
        if coupon.percent_off is not None:
            net -= gross * Fraction(Decimal(str(coupon.percent_off))) / 100
        elif coupon.amount_off is not None:
            net -= coupon.amount_off / _billing_months(sub)
    return _round_cents(max(net, Fraction(0)))


def _coupons(sub: Subscription) -> list[Coupon]:
    """Each expanded coupon once: the legacy ``discount`` and the ``discounts`` list."""
    found: dict[str, Coupon] = {}
    candidates: Sequence[str | Discount] = [
        *([sub.discount] if sub.discount else []),
        *sub.discounts,
    ]
    for discount in candidates:
        coupon = discount.expanded() if isinstance(discount, Discount) else None
        if coupon is not None:
            found.setdefault(coupon.id, coupon)
    return list(found.values())


def _billing_months(sub: Subscription) -> Fraction:
    """Months between two invoices: an ``amount_off`` coupon is taken off each invoice."""
    recurring = next((i.price.recurring for i in sub.items.data if i.price.recurring), None)
    if recurring is None:
        return Fraction(1)
    return MONTHS_PER_INTERVAL[recurring.interval] * recurring.interval_count


def _round_cents(amount: Fraction) -> int:
    exact = Decimal(amount.numerator) / Decimal(amount.denominator)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def plan_label(sub: Subscription, plan_from: PlanFrom) -> str:
    """The plan of the item that brings the most MRR (the first on a tie)."""
    items = sub.items.data
    if not items:
        return ""
    ranked = sorted(enumerate(items), key=lambda pair: (-_safe_monthly(pair[1]), pair[0]))
    price = ranked[0][1].price
    product = price.product
    product_name = product.name if isinstance(product, Named) else None
    product_id = product.id if isinstance(product, Named) else product
    if plan_from == "price":
        label = price.id
    elif plan_from == "product":
        label = product_name or product_id or price.id
    else:
        label = price.nickname or product_name or product_id or price.id
    return label[:64]


def _safe_monthly(item: Item) -> Fraction:
    try:
        return item_monthly(item)
    except ValueError:
        return Fraction(0)
