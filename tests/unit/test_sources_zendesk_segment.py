"""Zendesk ticket events and Segment messages -> contract events, from the vendors' examples
(tests/vendor_payloads/zendesk, tests/vendor_payloads/segment)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from schemas import Event, parse_event
from schemas.sources import Draft, Ignored, Unmappable, segment, unix_time, zendesk
from tests.vendors import payload


def only(mapped: object) -> Draft:
    assert isinstance(mapped, list) and len(mapped) == 1, mapped
    draft = mapped[0]
    assert isinstance(draft, Draft)
    parsed = parse_event(draft.encode(), now=draft.time + 60)
    assert isinstance(parsed, Event), parsed
    return draft


def test_zendesk_ticket_created_opens_the_ticket() -> None:
    draft = only(zendesk.map_event(orjson.dumps(payload("zendesk/ticket_created"))))
    assert draft.id == "zendesk:01HNXXXX-CTEXAMPLE"
    assert (draft.type, draft.account_id) == ("ticket.opened", "10002")
    assert draft.time == 1_713_374_290.0  # 2024-04-17T17:18:10Z
    assert draft.data == {"ticket_id": "35436", "channel": "web", "user_id": "20978392"}


def test_zendesk_solved_resolves_with_the_assignee() -> None:
    draft = only(zendesk.map_event(orjson.dumps(payload("zendesk/ticket_status_changed"))))
    assert (draft.type, draft.data) == (
        "ticket.resolved",
        {"ticket_id": "35436", "agent_id": "235324"},
    )


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        ("OPEN", "SOLVED", "ticket.resolved"),
        ("PENDING", "CLOSED", "ticket.resolved"),
        ("SOLVED", "OPEN", "ticket.reopened"),
        ("closed", "pending", "ticket.reopened"),
        ("SOLVED", "CLOSED", None),
        ("NEW", "OPEN", None),
    ],
)
def test_zendesk_status_changes(previous: str, current: str, expected: str | None) -> None:
    body = payload("zendesk/ticket_status_changed")
    body["event"].update(previous=previous, current=current)
    mapped = zendesk.map_event(orjson.dumps(body))
    if expected is None:
        assert isinstance(mapped, Ignored) and mapped.kind == "ticket.status_changed"
    else:
        assert only(mapped).type == expected


def test_zendesk_comments_are_replies_by_agent_or_customer() -> None:
    body = payload("zendesk/ticket_comment_added")
    agent = only(zendesk.map_event(orjson.dumps(body)))
    assert (agent.type, agent.data) == (
        "ticket.replied",
        {"ticket_id": "35436", "author": "agent", "agent_id": "235324"},
    )
    body["event"]["comment"]["author"].update(id="20978392", is_staff=False)
    customer = only(zendesk.map_event(orjson.dumps(body)))
    assert customer.data == {"ticket_id": "35436", "author": "customer"}
    body["event"]["comment"].update(is_public=False)
    assert zendesk.map_event(orjson.dumps(body)) == Ignored(
        "ticket.comment_added", "private comment"
    )


def test_zendesk_without_organization_is_unmappable_and_others_ignored() -> None:
    body = payload("zendesk/ticket_created")
    body["detail"]["organization_id"] = None
    mapped = zendesk.map_event(orjson.dumps(body))
    assert isinstance(mapped, Unmappable) and mapped.reason == "no_organization"
    other = payload("zendesk/ticket_created", type="zen:event-type:ticket.priority_changed")
    assert zendesk.map_event(orjson.dumps(other)) == Ignored("ticket.priority_changed")
    assert isinstance(zendesk.map_event(b"[]"), Unmappable)


def test_zendesk_channels() -> None:
    body = payload("zendesk/ticket_created")
    for channel, expected in [("email", "email"), ("voice", "phone"), ("api", "other")]:
        body["detail"]["via"] = {"channel": channel}
        assert only(zendesk.map_event(orjson.dumps(body))).data["channel"] == expected


def track(memory: segment.SegmentMemory, **changes: Any) -> Draft | Ignored | Unmappable:
    mapped = segment.map_message(orjson.dumps(payload("segment/track", **changes)), memory)
    return only(mapped) if isinstance(mapped, list) else mapped


def test_segment_track_needs_an_account() -> None:
    memory = segment.SegmentMemory()
    assert track(memory) == Ignored("track", "no group yet")


def test_segment_group_names_the_account_of_later_messages() -> None:
    memory = segment.SegmentMemory()
    group = payload("segment/group", userId="AiUGstSDIg")
    assert segment.map_message(orjson.dumps(group), memory) == Ignored("group")
    draft = track(memory)
    assert isinstance(draft, Draft)
    assert draft.id == "segment:ajs-f8ca1e4de5024d9430b3928bd8ac6b96"
    assert (draft.type, draft.account_id) == ("session.started", "0e8c78ea9d97a7b8185e8632")
    assert draft.time == unix_time("2015-12-12T19:11:01.249Z")
    assert draft.data == {
        "session_id": f"AiUGstSDIg:{1_449_947_461_249}",
        "user_id": "AiUGstSDIg",
        "platform": "web",
    }


def test_segment_sessions_are_cut_after_thirty_idle_minutes() -> None:
    memory = segment.SegmentMemory()
    context = {"groupId": "acme", "library": {"name": "analytics-ios"}}
    first = track(memory, context=context, messageId="m1", timestamp="2026-01-01T10:00:00Z")
    again = track(memory, context=context, messageId="m2", timestamp="2026-01-01T10:30:00Z")
    later = track(memory, context=context, messageId="m3", timestamp="2026-01-01T11:00:01Z")
    assert isinstance(first, Draft) and isinstance(again, Draft) and isinstance(later, Draft)
    assert (first.type, first.data["platform"]) == ("session.started", "ios")
    assert again.type == "session.heartbeat"  # exactly 30 minutes: same session
    assert again.data["session_id"] == first.data["session_id"]
    assert later.type == "session.started"  # 30 minutes and 1 s idle: a new one
    assert later.data["session_id"] != first.data["session_id"]


def test_segment_uses_amplitudes_session_id() -> None:
    memory = segment.SegmentMemory()
    context = {"groupId": "acme"}
    named = {"Amplitude": {"session_id": 1_767_261_600_000}}
    first = track(memory, context=context, integrations=named, messageId="a1")
    second = track(
        memory,
        context=context,
        integrations=named,
        messageId="a2",
        timestamp="2015-12-12T23:00:00Z",  # hours later, still Amplitude's session
    )
    assert isinstance(first, Draft) and isinstance(second, Draft)
    assert first.data["session_id"] == "amplitude:AiUGstSDIg:1767261600000"
    assert (first.type, second.type) == ("session.started", "session.heartbeat")
    assert second.data["session_id"] == first.data["session_id"]


def test_segment_identify_updates_nothing_and_page_counts() -> None:
    memory = segment.SegmentMemory()
    identify = {
        "type": "identify",
        "messageId": "i1",
        "userId": "u1",
        "timestamp": "2026-01-01T00:00:00Z",
    }
    assert segment.map_message(orjson.dumps(identify), memory) == Ignored("identify")
    page = payload("segment/page")
    page["context"]["groupId"] = "initech"
    draft = only(segment.map_message(orjson.dumps(page), memory))
    assert (draft.type, draft.account_id, draft.data["user_id"]) == (
        "session.started",
        "initech",
        "97980cfea0067",
    )


def test_segment_bad_messages() -> None:
    memory = segment.SegmentMemory()
    no_time = payload("segment/track", timestamp=None, receivedAt=None)
    mapped = segment.map_message(orjson.dumps(no_time), memory)
    assert isinstance(mapped, Unmappable) and mapped.reason == "bad_time"
    assert isinstance(segment.map_message(b'{"type": "track"}', memory), Unmappable)


def test_segment_memory_is_bounded() -> None:
    memory = segment.SegmentMemory(max_users=2)
    for user in ("a", "b", "c"):
        memory.join(user, "g")
        memory.session(user, 0.0, None)
    assert list(memory.groups) == ["b", "c"]
    assert list(memory.sessions) == ["b", "c"]
