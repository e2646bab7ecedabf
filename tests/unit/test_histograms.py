"""Response-time histogram fields: bounds, and how late events move a ticket between them."""

from __future__ import annotations

from aggregators.entity_keys import EntityKey
from aggregators.histograms import histogram_field, histogram_fields, le_label
from tests.unit.test_batch import ev, minute, plan

T1 = EntityKey("t", "acme", "T1")
T2 = EntityKey("t", "acme", "T2")


def test_a_duration_lands_in_the_smallest_bound_it_fits() -> None:
    assert histogram_field("first_response", 0) == "first_response_le_60"
    assert histogram_field("first_response", -5) == "first_response_le_60"  # clamped, as the mean
    assert histogram_field("first_response", 60) == "first_response_le_60"  # le is inclusive
    assert histogram_field("first_response", 60.001) == "first_response_le_300"
    assert histogram_field("resolution", 259200.5) == "resolution_le_inf"
    assert histogram_fields("resolution")[-1] == "resolution_le_inf"
    assert [le_label(b) for b in (60, 259200, float("inf"))] == ["60.0", "259200.0", "+Inf"]


def test_a_late_earlier_reply_moves_the_ticket_to_a_faster_bucket() -> None:
    first = plan(
        "tickets",
        [
            ev("ticket.opened", 100, 1, ticket_id="T1"),
            ev("ticket.replied", 700, 2, ticket_id="T1", author="agent", agent_id="ana"),
        ],
    )
    assert first.effects.counters[minute(700)]["first_response_le_900"] == 1  # 600 s
    state = first.effects.entities[T1]
    assert state is not None
    late = plan(
        "tickets",
        [ev("ticket.replied", 130, 3, ticket_id="T1", author="agent", agent_id="bo")],
        {T1: state},
    )
    counters = late.effects.counters
    assert counters[minute(700)]["first_response_le_900"] == -1  # retracted where it was
    assert counters[minute(130)]["first_response_le_60"] == 1  # 30 s, at the new first reply
    assert counters[minute(130)]["first_response_sum"] == 30  # exactly as the mean moves


def test_an_earlier_resolution_arriving_late_moves_the_resolution_time() -> None:
    first = plan(
        "tickets",
        [
            ev("ticket.opened", 0, 1, ticket_id="T2"),
            ev("ticket.resolved", 3000, 2, ticket_id="T2"),
        ],
    )
    assert first.effects.counters[minute(3000)]["resolution_le_3600"] == 1
    state = first.effects.entities[T2]
    assert state is not None
    late = plan("tickets", [ev("ticket.resolved", 200, 3, ticket_id="T2")], {T2: state})
    assert late.effects.counters[minute(3000)]["resolution_le_3600"] == -1
    assert late.effects.counters[minute(200)]["resolution_le_300"] == 1
