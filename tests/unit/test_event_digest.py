"""The dedup index's digest is part of the stored state: 64-bit BLAKE2b of the UTF-8 id."""

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from aggregators.offered import event_digest, offer_all
from schemas import Event
from schemas.models import TicketOpened


def _reference(event_id: str) -> str:
    return hashlib.blake2b(event_id.encode("utf-8"), digest_size=8).hexdigest()


@given(st.text(min_size=1, max_size=200))
def test_one_digest_is_blake2b_of_the_id(event_id: str) -> None:
    assert event_digest(event_id) == _reference(event_id)


@given(st.lists(st.text(min_size=1, max_size=60), max_size=30))
def test_a_batch_gets_each_event_its_own_digest(ids: list[str]) -> None:
    data = TicketOpened(account_id="acme", ticket_id="T1")
    events = [Event(i, "desk", "ticket.opened", 1.0, "acme", data) for i in ids]
    offered = offer_all(list(range(len(events))), events)
    assert [o.digest for o in offered] == [_reference(i) for i in ids]
    assert [o.offset for o in offered] == list(range(len(ids)))


def test_a_known_id_keeps_its_known_digest() -> None:
    assert event_digest("abc") == "d8bb14d833d59559"
