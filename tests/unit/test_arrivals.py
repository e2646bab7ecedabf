"""Each applied id is scored by the record timestamp of its first copy in the batch."""

from aggregators.offered import Offered
from schemas import Event
from schemas.models import TicketOpened
from streams.processor import RawMessage, _arrivals


def _item(offset: int, digest: str) -> Offered:
    data = TicketOpened(account_id="acme", ticket_id=f"T{offset}")
    return Offered(offset, Event("id", "src", "ticket.opened", 1.0, "acme", data), digest)


def test_every_record_offered_the_first_copy_of_an_id_wins() -> None:
    messages = [RawMessage(o, None, b"", 100.0 + o) for o in (10, 11, 12)]
    offered = [_item(10, "a"), _item(11, "b"), _item(12, "a")]
    assert _arrivals(messages, offered) == {"a": 110.0, "b": 111.0}


def test_a_record_not_offered_leaves_the_others_their_own_stamps() -> None:
    messages = [RawMessage(o, None, b"", 100.0 + o) for o in (10, 11, 12, 13)]
    offered = [_item(11, "b"), _item(12, "a"), _item(13, "a")]  # 10 was rejected
    assert _arrivals(messages, offered) == {"b": 111.0, "a": 112.0}


def test_a_record_with_no_timestamp_arrives_when_it_is_read() -> None:
    messages = [RawMessage(10, None, b""), RawMessage(11, None, b"", -1.0)]
    found = _arrivals(messages, [_item(10, "a"), _item(11, "b")])
    assert found["a"] == found["b"] > 1_700_000_000
