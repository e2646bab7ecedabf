"""Segment messages -> session events of the contract.

``track``, ``page`` and ``screen`` are product usage: each one is a session
event of its user. The session is the one Amplitude's integration names
(``integrations.Amplitude.session_id``) when the message carries it;
otherwise a user's session is cut after ``idle_timeout`` seconds without a
message, as Segment's and Amplitude's own session definitions do. The first
message of a session is ``session.started``, the rest ``session.heartbeat``.
The account is ``context.groupId``, else the group of the user's latest
``group`` call. ``identify`` and ``group`` update no metric.

Sessions and groups need memory across messages: :class:`SegmentMemory`
keeps it in the process, bounded (least recently seen users are forgotten
first). A restart or a second ingest replica forgets it, which can split a
session in two (documented); the contract ids stay derived from Segment's
``messageId``, so a redelivered message is still counted once.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from schemas.sources import Draft, Ignored, Mapped, Unmappable, decode_error, unix_time

SOURCE: Final = "segment"
USAGE_TYPES: Final = frozenset({"track", "page", "screen"})
PLATFORMS: Final[dict[str, str]] = {
    "analytics.js": "web",
    "analytics-next": "web",
    "analytics-ios": "ios",
    "analytics-swift": "ios",
    "analytics-android": "android",
    "analytics-kotlin": "android",
    "analytics-react-native": "other",
    "analytics-node": "api",
    "analytics-python": "api",
    "analytics-ruby": "api",
    "analytics-go": "api",
    "analytics-java": "api",
    "analytics-php": "api",
}
"""``context.library.name`` -> the contract's platform; anything else is ``other``."""
AMPLITUDE_KEYS: Final = ("Amplitude", "Actions Amplitude")


class Library(msgspec.Struct, frozen=True):
    name: str = ""


class Context(msgspec.Struct, frozen=True):
    groupId: str | None = None
    library: Library = Library()


class Message(msgspec.Struct, frozen=True):
    """A Segment message; field names are Segment's own (camelCase)."""

    type: str
    messageId: str
    timestamp: str | None = None
    userId: str | None = None
    anonymousId: str | None = None
    groupId: str | None = None
    context: Context = Context()
    integrations: dict[str, Any] = {}
    receivedAt: str | None = None

    def user(self) -> str | None:
        return self.userId or self.anonymousId or None


@dataclass
class SegmentMemory:
    """Each user's current session and group, for the users seen most recently."""

    idle_timeout: float = 1800.0
    max_users: int = 100_000
    sessions: OrderedDict[str, tuple[str, float]] = field(default_factory=OrderedDict)
    """user -> (session id, latest message time)."""
    groups: OrderedDict[str, str] = field(default_factory=OrderedDict)
    """user -> group of its latest ``group`` call."""
    amplitude: OrderedDict[str, None] = field(default_factory=OrderedDict)
    """Amplitude session ids already started."""

    def session(self, user: str, at: float, named: str | None) -> tuple[str, bool]:
        """The session of a message at ``at``, and whether it starts it."""
        if named is not None:
            key = f"amplitude:{user}:{named}"
            fresh = key not in self.amplitude
            _remember(self.amplitude, key, None, self.max_users)
            return key, fresh
        current = self.sessions.get(user)
        if current is not None and at - current[1] <= self.idle_timeout:
            latest = max(at, current[1])
            _remember(self.sessions, user, (current[0], latest), self.max_users)
            return current[0], False
        session_id = f"{user}:{int(at * 1000)}"
        _remember(self.sessions, user, (session_id, at), self.max_users)
        return session_id, True

    def group(self, user: str) -> str | None:
        return self.groups.get(user)

    def join(self, user: str, group: str) -> None:
        _remember(self.groups, user, group, self.max_users)


def _remember(table: OrderedDict[str, Any], key: str, value: Any, bound: int) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > bound:
        table.popitem(last=False)


def map_message(body: bytes, memory: SegmentMemory) -> Mapped:
    """One Segment message (the webhook destination's body) as contract events."""
    try:
        message = msgspec.json.decode(body, type=Message)
        at = unix_time(message.timestamp or message.receivedAt or "")
    except msgspec.DecodeError as exc:
        return decode_error(exc)
    except ValueError as exc:
        return Unmappable("bad_time", str(exc) or "no timestamp")
    user = message.user()
    joined = message.groupId if message.type == "group" else message.context.groupId
    if user and joined:
        memory.join(user, joined)
    if message.type not in USAGE_TYPES:
        return Ignored(message.type)
    if user is None:
        return Unmappable("no_user", "neither userId nor anonymousId")
    account = message.context.groupId or memory.group(user)
    if not account:
        return Ignored(message.type, "no group yet")
    session_id, starts = memory.session(user, at, amplitude_session(message))
    data: dict[str, Any] = {"session_id": session_id, "user_id": user}
    if starts:
        data["platform"] = PLATFORMS.get(message.context.library.name, "other")
    kind = "session.started" if starts else "session.heartbeat"
    return [Draft(f"{SOURCE}:{message.messageId}", SOURCE, kind, at, account, data)]


def amplitude_session(message: Message) -> str | None:
    """The session id Amplitude's Segment integration put on the message, if any."""
    for key in AMPLITUDE_KEYS:
        options = message.integrations.get(key)
        if isinstance(options, dict) and options.get("session_id") not in (None, "", -1):
            return str(options["session_id"])
    return None
