"""ZRANGE ... WITHSCORES comes as pairs (RESP3) or flat (RESP2): one reading of both."""

from aggregators.store import _member_scores


def test_pairs_and_flat_replies_read_alike() -> None:
    expected = [(b"acme", 2.0), (b"globex", 5.0)]
    assert _member_scores([[b"acme", 2.0], [b"globex", 5.0]]) == expected
    assert _member_scores([b"acme", b"2", b"globex", b"5"]) == expected
    assert _member_scores([(b"acme", 2.0), (b"globex", 5.0)]) == expected
    assert _member_scores([]) == []
