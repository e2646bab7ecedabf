"""Entity keys: which state an event updates, as a typed value.

A key is (kind, account, id). Its text form, used in Redis key names,
length-prefixes the account so that no pair of ids can collide: account
``org:7`` with ticket ``42`` is ``t:5:org:7:42`` while account ``org`` with
ticket ``7:42`` is ``t:3:org:7:42``.
"""

from __future__ import annotations

from typing import NamedTuple

TICKET = "t"
SESSION = "s"
BILLING_ACCOUNT = "b"
FACTS = "f"


class EntityKey(NamedTuple):
    """The state one event updates within its partition."""

    kind: str
    """One of :data:`TICKET`, :data:`SESSION`, :data:`BILLING_ACCOUNT`, :data:`FACTS`."""
    account: str
    id: str = ""
    """Ticket or session id; empty for per-account state."""

    def text(self) -> str:
        """Unambiguous text form (the account is length-prefixed)."""
        return f"{self.kind}:{len(self.account)}:{self.account}:{self.id}"

    def member(self) -> str:
        """Unambiguous account + id, for sets shared by the partition (live sessions)."""
        return f"{len(self.account)}:{self.account}:{self.id}"


def facts_key(account: str) -> EntityKey:
    """Key of one family's health facts for an account."""
    return EntityKey(FACTS, account)
