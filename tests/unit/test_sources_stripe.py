"""Stripe events -> contract events, from Stripe's own fixtures (tests/vendor_payloads/stripe).

Expected MRR figures are worked out by hand in each test from the price,
quantity, interval and coupon it sets, not by the code under test.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from schemas import Event, parse_event
from schemas.sources import Draft, Ignored, Unmappable
from schemas.sources.stripe import StripeConfig, map_event
from tests.vendors import payload, priced, stripe_event, subscription


def fixture(name: str) -> dict[str, Any]:
    return payload(f"stripe/{name}")


def event(kind: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> bytes:
    return stripe_event(kind, obj, previous)


def one(body: bytes, config: StripeConfig | None = None) -> Draft:
    mapped = map_event(body, config or StripeConfig())
    assert isinstance(mapped, list) and len(mapped) == 1, mapped
    return mapped[0]


def valid(draft: Draft) -> Event:
    """The draft passes the contract's own validator, as the worker would see it."""
    parsed = parse_event(draft.encode(), now=draft.time + 60)
    assert isinstance(parsed, Event), parsed
    return parsed


def test_the_fixture_subscription_starts_at_its_monthly_price() -> None:
    draft = one(event("customer.subscription.created", subscription()))
    assert draft.id == "stripe:evt_1Pgc76B7WZ01zgkWwyRHS12y"
    assert (draft.type, draft.account_id, draft.time) == (
        "subscription.started",
        "cus_QXg1o8vcGmoR32",
        1_764_000_000.0,
    )
    assert draft.data == {
        "subscription_id": "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw",
        "plan": "prod_QXg1hqf4jFNsqG",  # no nickname, product not expanded: its id
        "mrr_cents": 2000,
        "currency": "USD",
        "trial": False,
    }
    assert valid(draft).type == "subscription.started"


@pytest.mark.parametrize(
    ("amount", "interval", "quantity", "every", "mrr"),
    [
        (120_000, "year", 2, 1, 20_000),  # $1,200 a year x 2 = $2,400 / 12 = $200
        (9_000, "month", 1, 3, 3_000),  # $90 a quarter = $30
        (1_000, "week", 1, 1, 4_333),  # $10 x 52 / 12 = $43.333...
        (100, "day", 1, 1, 3_042),  # $1 x 365 / 12 = $30.4166... rounds up
        (2_500, "month", 4, 1, 10_000),
        (99_900, "year", 1, 2, 4_163),  # $999 every two years = 99900 / 24 = 4162.5 -> 4163
    ],
)
def test_mrr_is_normalised_to_a_month(
    amount: int, interval: str, quantity: int, every: int, mrr: int
) -> None:
    sub = priced(subscription(), amount, interval, quantity, every)
    assert one(event("customer.subscription.created", sub)).data["mrr_cents"] == mrr


def test_items_add_up_and_the_biggest_names_the_plan() -> None:
    sub = priced(subscription(), 120_000, "year", 2)
    extra = copy.deepcopy(sub["items"]["data"][0])
    extra["price"].update(id="price_seats", nickname="Seats", unit_amount=500)
    extra["price"].update(unit_amount_decimal="500")
    extra["price"]["recurring"].update(interval="month")
    extra["quantity"] = 3
    sub["items"]["data"][0]["price"]["nickname"] = "Team annual"
    sub["items"]["data"].append(extra)
    draft = one(event("customer.subscription.created", sub))
    assert draft.data["mrr_cents"] == 20_000 + 1_500
    assert draft.data["plan"] == "Team annual"


def test_plan_label_sources() -> None:
    sub = subscription()
    sub["items"]["data"][0]["price"]["product"] = {
        "id": "prod_Q",
        "name": "Pro",
        "object": "product",
    }
    body = event("customer.subscription.created", sub)
    assert one(body).data["plan"] == "Pro"  # no nickname: the expanded product's name
    assert (
        one(body, StripeConfig(plan_from="price")).data["plan"] == "price_1PgafmB7WZ01zgkW6dKueIc5"
    )
    sub["items"]["data"][0]["price"]["nickname"] = "Pro monthly"
    body = event("customer.subscription.created", sub)
    assert one(body).data["plan"] == "Pro monthly"
    assert one(body, StripeConfig(plan_from="product")).data["plan"] == "Pro"


def coupon(**changes: Any) -> dict[str, Any]:
    found = fixture("coupon")  # 25.5 % off, forever
    found.update(changes)
    return found


@pytest.mark.parametrize(
    ("shape", "mrr"),
    [
        ({"discount": {"coupon": coupon()}}, 1_490),  # 2000 x (1 - 0.255)
        ({"discounts": [{**fixture("discount"), "source": {"coupon": coupon()}}]}, 1_490),
        ({"discount": {"coupon": coupon(duration="repeating")}}, 1_490),
        ({"discount": {"coupon": coupon(duration="once")}}, 2_000),  # one-off: MRR unchanged
        ({"discounts": ["di_1Pgc6rB7WZ01zgkW7Al8Fal9"]}, 2_000),  # not expanded: unknown
        ({"discount": {"coupon": coupon(percent_off=None, amount_off=500)}}, 1_500),
        ({"discount": {"coupon": coupon(percent_off=None, amount_off=5_000)}}, 0),  # floor 0
    ],
)
def test_recurring_discounts_come_off(shape: dict[str, Any], mrr: int) -> None:
    sub = subscription(**shape)
    assert one(event("customer.subscription.created", sub)).data["mrr_cents"] == mrr


def test_an_amount_off_an_annual_invoice_is_spread_over_its_months() -> None:
    sub = priced(subscription(), 120_000, "year")
    sub["discount"] = {"coupon": coupon(percent_off=None, amount_off=500)}
    # 120000 / 12 = 10000 a month, less 500 / 12 = 41.67: 9958.33
    assert one(event("customer.subscription.created", sub)).data["mrr_cents"] == 9_958


def test_a_trial_starts_at_its_price_flagged_and_converts() -> None:
    sub = priced(subscription(status="trialing", trial_end=1_765_000_000), 120_000, "year", 2)
    started = one(event("customer.subscription.created", sub))
    assert (started.type, started.data["trial"], started.data["mrr_cents"]) == (
        "subscription.started",
        True,
        20_000,
    )
    sub["status"] = "active"
    converted = one(event("customer.subscription.updated", sub, {"status": "trialing"}))
    assert converted.type == "trial.converted"
    assert converted.data == {
        "subscription_id": sub["id"],
        "plan": "prod_QXg1hqf4jFNsqG",
        "mrr_cents": 20_000,
        "currency": "USD",
    }
    valid(converted)


def test_a_trial_deleted_before_its_end_expires() -> None:
    sub = subscription(status="canceled", trial_end=1_765_000_000, ended_at=1_764_000_000)
    draft = one(event("customer.subscription.deleted", sub))
    assert (draft.type, draft.data) == ("trial.expired", {"subscription_id": sub["id"]})


def test_cancel_at_period_end_waits_for_the_deletion() -> None:
    sub = subscription(cancel_at_period_end=True)
    scheduled = map_event(
        event("customer.subscription.updated", sub, {"cancel_at_period_end": False})
    )
    assert scheduled == Ignored("customer.subscription.updated", "status active")
    sub.update(status="canceled", ended_at=1_764_000_000, trial_end=1_700_000_000)
    sub["cancellation_details"] = {"reason": "cancellation_requested", "feedback": "too_expensive"}
    draft = one(event("customer.subscription.deleted", sub))
    assert draft.type == "subscription.canceled"
    assert draft.data == {
        "subscription_id": sub["id"],
        "at_term_end": True,
        "reason": "too_expensive",
    }
    valid(draft)


def test_an_immediate_cancellation_is_not_at_term_end() -> None:
    sub = subscription(status="canceled", ended_at=1_764_000_000)
    draft = one(event("customer.subscription.deleted", sub))
    assert draft.data == {"subscription_id": sub["id"], "at_term_end": False}


def test_a_quantity_change_is_a_change_with_the_new_mrr() -> None:
    sub = priced(subscription(), 120_000, "year", 3)
    previous = {"items": {"data": []}, "quantity": 2}
    draft = one(event("customer.subscription.updated", sub, previous))
    assert (draft.type, draft.data["mrr_cents"]) == ("subscription.changed", 30_000)


def test_an_update_that_moves_no_money_is_ignored() -> None:
    body = event("customer.subscription.updated", subscription(), {"metadata": {}})
    assert map_event(body) == Ignored("customer.subscription.updated", "status active")


def test_an_incomplete_subscription_starts_when_first_paid() -> None:
    sub = subscription(status="incomplete")
    assert isinstance(map_event(event("customer.subscription.created", sub)), Ignored)
    expired = subscription(status="incomplete_expired", ended_at=1_764_000_000)
    assert map_event(event("customer.subscription.deleted", expired)) == Ignored(
        "customer.subscription.deleted", "never paid"
    )
    sub["status"] = "active"
    draft = one(event("customer.subscription.updated", sub, {"status": "incomplete"}))
    assert (draft.type, draft.data["mrr_cents"]) == ("subscription.started", 2000)


def test_invoices() -> None:
    invoice = fixture("invoice")  # amount_due 1000, amount_paid 0 in the fixture
    invoice["amount_paid"] = 1000
    paid = one(event("invoice.paid", invoice))
    assert (paid.type, paid.account_id, paid.data) == (
        "invoice.paid",
        "cus_QXg1o8vcGmoR32",
        {"invoice_id": "in_1Pgc6tB7WZ01zgkWu9fdqL6I", "amount_cents": 1000, "currency": "USD"},
    )
    failed = one(event("invoice.payment_failed", fixture("invoice")))
    assert (failed.type, failed.data["amount_cents"]) == ("invoice.failed", 1000)
    valid(paid)
    valid(failed)


def test_the_account_comes_from_metadata_when_set() -> None:
    key = StripeConfig().account_key
    sub = subscription(metadata={key: "acme"})
    assert one(event("customer.subscription.created", sub)).account_id == "acme"
    sub["customer"] = {"id": "cus_1", "object": "customer", "metadata": {key: "globex"}}
    assert one(event("customer.subscription.created", sub)).account_id == "globex"
    custom = StripeConfig(account_key="tenant")
    sub = subscription(metadata={"tenant": "initech"})
    assert one(event("customer.subscription.created", sub), custom).account_id == "initech"
    invoice = fixture("invoice")
    invoice["parent"]["subscription_details"]["metadata"] = {key: "acme"}
    assert one(event("invoice.paid", invoice)).account_id == "acme"


def test_a_redelivery_maps_to_the_same_ids() -> None:
    body = event("customer.subscription.created", subscription())
    assert map_event(body) == map_event(body)


def test_other_types_are_ignored() -> None:
    assert map_event(orjson.dumps(fixture("event"))) == Ignored("plan.created")


def test_a_tiered_price_is_unmappable() -> None:
    sub = subscription()
    sub["items"]["data"][0]["price"].update(unit_amount=None, unit_amount_decimal=None)
    mapped = map_event(event("customer.subscription.created", sub))
    assert isinstance(mapped, Unmappable) and mapped.reason == "unsupported_price"


def test_a_broken_object_is_unmappable() -> None:
    sub = subscription()
    del sub["items"]
    mapped = map_event(event("customer.subscription.created", sub))
    assert isinstance(mapped, Unmappable) and mapped.reason == "bad_payload"
    assert "items" in mapped.detail
    assert isinstance(map_event(b"{not json"), Unmappable)
