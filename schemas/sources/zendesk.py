"""Zendesk ticket event webhooks -> ticket events of the contract.

Zendesk's event subscriptions (``zen:event-type:ticket.*``) carry the ticket
in ``detail`` and the change in ``event``. ``ticket.created`` opens a
ticket; ``ticket.status_changed`` to solved resolves it (and to closed, when
it was not solved before), from solved or closed back to an open status
reopens it; ``ticket.comment_added`` with a public comment is a reply, by an
agent when its author ``is_staff``. Every other type is :class:`Ignored`.
The account is the ticket's organization: a ticket without one cannot be
placed and is :class:`Unmappable`.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from schemas.sources import Draft, Ignored, Mapped, Unmappable, decode_error, unix_time

SOURCE: Final = "zendesk"
PREFIX: Final = "zen:event-type:"
DONE: Final = frozenset({"solved", "closed"})
ACTIVE: Final = frozenset({"new", "open", "pending", "hold"})
CHANNELS: Final[dict[str, str]] = {
    "email": "email",
    "web": "web",
    "web_form": "web",
    "web_widget": "web",
    "mobile": "web",
    "mobile_sdk": "web",
    "help_center": "web",
    "chat": "chat",
    "native_messaging": "chat",
    "messaging": "chat",
    "voice": "phone",
    "phone": "phone",
    "sms": "phone",
    "twitter": "social",
    "facebook": "social",
    "instagram_dm": "social",
    "whatsapp": "social",
}
"""Zendesk's ``via.channel`` -> the contract's channel; anything else is ``other``."""

ZendeskId = str | int
"""Zendesk sends ids as strings in event webhooks and as integers in its REST API."""


class Via(msgspec.Struct, frozen=True):
    channel: str | None = None


class Ticket(msgspec.Struct, frozen=True):
    id: ZendeskId
    organization_id: ZendeskId | None = None
    requester_id: ZendeskId | None = None
    assignee_id: ZendeskId | None = None
    via: Via | None = None


class Author(msgspec.Struct, frozen=True):
    id: ZendeskId
    is_staff: bool = False


class Comment(msgspec.Struct, frozen=True):
    author: Author
    is_public: bool = True


class Change(msgspec.Struct, frozen=True):
    """The ``event`` object: a status change's ``current`` and ``previous``, or a comment."""

    current: Any = None
    previous: Any = None
    comment: Comment | None = None


class Event(msgspec.Struct, frozen=True):
    id: str
    type: str
    time: str
    detail: Ticket
    event: Change = Change()


TICKET_TYPES: Final = frozenset({"ticket.created", "ticket.status_changed", "ticket.comment_added"})


def map_event(body: bytes) -> Mapped:
    """One Zendesk event webhook body as contract events."""
    try:
        kind = msgspec.json.decode(body, type=_Typed).type.removeprefix(PREFIX)
        if kind not in TICKET_TYPES:
            return Ignored(kind)
        event = msgspec.json.decode(body, type=Event)
        at = unix_time(event.time)
    except msgspec.DecodeError as exc:
        return decode_error(exc)
    except ValueError as exc:
        return Unmappable("bad_time", str(exc))
    account = _id(event.detail.organization_id)
    if account is None:
        return Unmappable("no_organization", f"ticket {event.detail.id} has no organization")
    typed = _ticket_event(kind, event)
    if isinstance(typed, Ignored):
        return typed
    contract, data = typed
    data["ticket_id"] = str(event.detail.id)
    return [Draft(f"{SOURCE}:{event.id}", SOURCE, contract, at, account, data)]


class _Typed(msgspec.Struct, frozen=True):
    type: str


def _id(value: ZendeskId | None) -> str | None:
    """An id as text; Zendesk's ``0`` and ``""`` mean none."""
    text = "" if value is None else str(value)
    return None if text in ("", "0") else text


def _ticket_event(kind: str, event: Event) -> tuple[str, dict[str, Any]] | Ignored:
    ticket = event.detail
    if kind == "ticket.created":
        data: dict[str, Any] = {"channel": CHANNELS.get(_channel(ticket), "other")}
        if requester := _id(ticket.requester_id):
            data["user_id"] = requester
        return "ticket.opened", data
    if kind == "ticket.status_changed":
        return _status_change(event)
    comment = event.event.comment
    if comment is None or not comment.is_public:
        return Ignored(kind, "private comment")
    if comment.author.is_staff:
        return "ticket.replied", {"author": "agent", "agent_id": str(comment.author.id)}
    return "ticket.replied", {"author": "customer"}


def _status_change(event: Event) -> tuple[str, dict[str, Any]] | Ignored:
    current = str(event.event.current or "").lower()
    previous = str(event.event.previous or "").lower()
    if current in DONE and previous not in DONE:
        data: dict[str, Any] = {}
        if agent := _id(event.detail.assignee_id):
            data["agent_id"] = agent
        return "ticket.resolved", data
    if previous in DONE and current in ACTIVE:
        return "ticket.reopened", {}
    return Ignored("ticket.status_changed", f"{previous or '?'} -> {current or '?'}")


def _channel(ticket: Ticket) -> str:
    return (ticket.via.channel or "") if ticket.via else ""
