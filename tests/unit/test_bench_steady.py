"""The steady-rate benchmark's bookkeeping: restamping events and pairing sends with scrapes."""

import math

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from bench.steady import (
    TOPICS,
    Scrape,
    Sent,
    Template,
    _scrapes_in,
    freshness,
    lane_of,
    lanes,
    percentile,
    stamp_of,
)
from streams.demo.world import Message

PREFIX = "p."


def test_template_restamps_ids_and_time_only() -> None:
    data = {"account_id": "a", "ticket_id": "t"}
    event = {"specversion": "1.0", "id": "abc", "source": "s", "type": "ticket.opened",
             "time": "2024-01-01T00:00:00.000Z", "data": data}  # fmt: skip
    template = Template.of(Message("tickets", b"a", orjson.dumps(event)))
    value = orjson.loads(template.render(b"-7", b"2026-12-02T03:00:00.250Z"))
    renewed = {**data, "ticket_id": "t-7"}
    assert value == {**event, "id": "abc-7", "time": "2026-12-02T03:00:00.250Z", "data": renewed}
    assert template.topic == 0 and template.key == b"a"


def test_template_keeps_user_and_account_ids() -> None:
    data = {"account_id": "a", "session_id": "s", "user_id": "u"}
    event = {"id": "e", "time": "2024-01-01T00:00:00.000Z", "type": "session.heartbeat",
             "data": data}  # fmt: skip
    template = Template.of(Message("logins", b"a", orjson.dumps(event)))
    value = orjson.loads(template.render(b"-1", b"2026-12-02T03:00:00.000Z"))
    assert value["data"] == {"account_id": "a", "session_id": "s-1", "user_id": "u"}
    assert (value["id"], value["time"], template.topic) == ("e-1", "2026-12-02T03:00:00.000Z", 2)


def test_stamp_cuts_to_the_millisecond() -> None:
    assert stamp_of(1_795_417_200.2509) == (b"2026-11-23T07:00:00.250Z", 1_795_417_200.25)


def scrape(at: float, **latest: float) -> Scrape:
    return Scrape(at, {PREFIX + k: v for k, v in latest.items()}, None, None)


def test_each_send_is_visible_at_the_first_later_scrape_covering_its_stamp() -> None:
    ticks = [Sent(10.0, 10.0, [2, 0, 0, 0]), Sent(10.5, 10.5, [1, 0, 0, 3])]
    scrapes = [
        scrape(10.2, tickets=9.0),  # shows nothing sent yet
        scrape(10.6, tickets=10.0, billing=10.5),  # first tick of tickets; billing's tick
        scrape(11.4, tickets=10.5, billing=10.5),  # second tick of tickets
    ]
    assert freshness(ticks, scrapes, [PREFIX + t for t in TOPICS]) == [
        (10.0, pytest.approx(0.6), 2),
        (10.5, pytest.approx(0.9), 1),
        (10.5, pytest.approx(0.1), 3),
    ]


def test_a_send_never_shown_counts_as_infinitely_late() -> None:
    names = [PREFIX + t for t in TOPICS]
    assert freshness([Sent(1.0, 1.0, [0, 1, 0, 0])], [scrape(2.0, surveys=0.5)], names) == [
        (1.0, math.inf, 1)
    ]


def test_percentiles_weigh_each_send_by_its_events() -> None:
    points = [(0.0, 0.1, 98), (0.0, 1.0, 1), (0.0, 3.0, 1)]
    assert percentile(points, 0.5) == 0.1
    assert percentile(points, 0.99) == 1.0
    assert percentile(points, 1.0) == 3.0
    assert math.isnan(percentile([], 0.5))


def test_a_lane_is_the_partition_the_default_partitioner_picks() -> None:
    """The same murmur2 rule as aiokafka's default partitioner, so counts match the broker."""
    names = lanes(PREFIX, 4)
    assert names[:5] == ["p.tickets[0]", "p.tickets[1]", "p.tickets[2]", "p.tickets[3]",
                         "p.surveys[0]"]  # fmt: skip
    for key in (b"acme", b"globex", b"a-1", b"zz"):
        template = Template(2, key, (b"",), 0)
        picked = DefaultPartitioner()(key, [0, 1, 2, 3], [0, 1, 2, 3])
        assert names[lane_of(template, 4)] == f"p.{TOPICS[2]}[{picked}]"


def test_a_minutes_plan_waits_are_the_counters_growth_over_its_scrapes() -> None:
    scrapes = [
        Scrape(at, {}, None, None, waits=waits)
        for at, waits in [(0.0, 4.0), (20.0, 9.0), (50.0, 31.0), (59.0, None)]
    ]
    assert _scrapes_in(scrapes)["plan_waits"] == 27.0
    assert _scrapes_in(scrapes[:1])["plan_waits"] is None
