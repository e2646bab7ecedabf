"""Each Lua script of ``aggregators/lua/`` on its own, against a real Redis.

Given keys and arguments as the Python side builds them, the resulting
Redis state and reply. The reserved field names come from
:mod:`aggregators.keys`, as the scripts get them.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import redis

from aggregators import keys
from aggregators.distinct import DISTINCT_LUA
from aggregators.health_index import INDEX_LUA, MIRROR_LUA
from aggregators.plan_directory import PLAN_LABEL_LUA
from aggregators.reader import READ_LUA
from aggregators.rolling import ApplyWindow, ReadWindow
from aggregators.scripts import PREAMBLE, source
from aggregators.store import APPLY_LUA, HISTORIES_LUA, SEEN_LUA
from tests.processor.conftest import Rig

TAG = keys.partition_tag("cs.tickets", 0)
META = keys.meta(TAG)
PREFIX = keys.bucket_prefix(TAG)
pack = msgspec.msgpack.encode


def run(client: redis.Redis, script: str, keys_: list[str], args: list[Any]) -> Any:
    return client.eval(script, len(keys_), *keys_, *args)  # type: ignore[no-untyped-call]


@pytest.fixture
def client(rig: Rig) -> redis.Redis:
    return rig.client()


def test_every_file_names_its_keys_and_argv() -> None:
    for name in ("apply", "seen", "histories", "read", "distinct", "mirror", "index", "plan_label"):
        head = source(name).splitlines()[:8]
        assert head[0].startswith(f"-- {name}.lua"), head
        assert any("KEYS" in line for line in head), name
        assert any("ARGV" in line for line in head), name
    assert PREAMBLE.startswith("local OFFSET, MAX_TS, CURSOR, NEWEST")
    assert "'ex'" not in APPLY_LUA and "'sa'" not in APPLY_LUA  # dead opcodes stay out


def test_seen_answers_which_digests_the_index_holds(client: redis.Redis) -> None:
    client.zadd(keys.seen(TAG), {"aa": 1.0, "cc": 2.0})
    assert run(client, SEEN_LUA, [keys.seen(TAG)], [pack(["aa", "bb", "cc"])]) == b"101"


def test_histories_reads_each_accounts_plan_history_oldest_first(client: redis.Redis) -> None:
    acme, globex, none = (keys.plan_history(TAG, a) for a in ("acme", "globex", "initech"))
    client.zadd(acme, {"7|pro": 200.5, "3|team": 100.0})
    client.zadd(globex, {"4|team": 150.0})
    reply = run(client, HISTORIES_LUA, [acme, none, globex], [])
    assert reply == [[b"3|team", b"100", b"7|pro", b"200.5"], [], [b"4|team", b"150"]]


def test_plan_label_admits_up_to_the_bound_then_other(client: redis.Redis) -> None:
    reply = run(client, PLAN_LABEL_LUA, [keys.PLAN_NAMES], [2, "team", "pro", "max", "team"])
    assert reply == [b"team", b"pro", keys.OTHER_PLAN.encode(), b"team"]
    assert client.smembers(keys.PLAN_NAMES) == {b"team", b"pro"}


def test_distinct_counts_or_lists_members_per_window_start(client: redis.Redis) -> None:
    z = keys.last_seen(TAG, "u")
    client.zadd(z, {"u1": 100, "u2": 200, "u3": 300})
    zkeys = [z, keys.guard(TAG)]
    assert run(client, DISTINCT_LUA, zkeys, [pack([50, 150, 250]), "0"]) == [[3, 2, 1]]
    members = run(client, DISTINCT_LUA, zkeys, [pack([50, 150, 250]), "1"])
    assert members == [[[b"u1"], [b"u2"], [b"u3"]]]


def apply(client: redis.Redis, fence: str, last: int, ops: list[Any], windows: list[Any]) -> Any:
    """The apply script as the store calls it: KEYS[1] meta, then the keys ops name."""
    script_keys = [META, keys.bucket(TAG, 60, 100), keys.gauges(TAG), keys.window(TAG, "1h")]
    args = [fence, str(last), pack(ops), "6030", pack(windows), PREFIX, "6040"]
    return run(client, APPLY_LUA, script_keys, args)


def test_apply_fences_writes_and_advances_the_offset(client: redis.Redis) -> None:
    window = ApplyWindow("1h", 60, 41, 60, 3660, 4, ["opened", "2"])
    ops = [["b", 2, 60, 100, 900, "opened", "2"], ["hf", 3, "tickets_open", "2"]]
    assert apply(client, "-1", 7, ops, [window]) == [1, b"7"]
    assert client.hgetall(keys.bucket(TAG, 60, 100)) == {b"opened": b"2"}
    assert 0 < client.ttl(keys.bucket(TAG, 60, 100)) <= 900
    assert client.hgetall(keys.gauges(TAG)) == {b"tickets_open": b"2"}
    assert client.hgetall(keys.window(TAG, "1h")) == {b"opened": b"2"}
    meta = client.hgetall(META)
    assert meta[keys.OFFSET.encode()] == b"7"
    assert meta[keys.MAX_TS.encode()] == b"6030"
    assert meta[keys.cursor("1h").encode()] == b"41"
    assert meta[keys.newest(60).encode()] == b"100"
    # the fence: planned on offset 3, but 7 is applied -> nothing written, 7 returned
    assert apply(client, "3", 9, ops, [window]) == [0, b"7"]
    assert client.hget(keys.gauges(TAG), "tickets_open") == b"2"
    assert client.hget(META, keys.OFFSET) == b"7"


def test_read_sums_each_window_at_the_reading_time(client: redis.Redis) -> None:
    window = ApplyWindow("1h", 60, 41, 60, 3660, 4, ["opened", "2"])
    apply(client, "-1", 7, [["b", 2, 60, 100, 900, "opened", "2"]], [window])
    read_keys = [META, keys.window(TAG, "1h"), keys.guard(TAG)]
    spec = ReadWindow("1h", 60, 41, 60, 3660, 100)
    assert run(client, READ_LUA, read_keys, [PREFIX, "6040", pack([spec])]) == [[b"opened", b"2"]]
    # an hour later bucket 100 has left the window: its sum is taken off, the cursor moves
    later = ReadWindow("1h", 60, 101, 60, 3660, 160)
    assert run(client, READ_LUA, read_keys, [PREFIX, "9640", pack([later])]) == [[]]
    assert client.hget(META, keys.cursor("1h")) == b"101"


def test_mirror_writes_one_familys_facts_and_bumps_the_version(client: redis.Redis) -> None:
    k = "cs:acct:{acme}"
    first = run(client, MIRROR_LUA, [k], ["tickets", "100", pack([['{"last":1.0}', False]])])
    version, *families = first[0]
    assert families == [b'{"last":1.0}', None, None, None]
    assert client.hget(k, keys.VERSION_FIELD) == version
    assert 0 < client.ttl(k) <= 100
    kept = run(client, MIRROR_LUA, [k], ["billing", "100", pack([['{"last":2.0}', True]])])
    assert int(kept[0][0]) == int(version) + 1
    assert kept[0][1:] == [b'{"last":1.0}', None, None, b'{"last":2.0}']
    assert client.hget(k, keys.KEEP_FIELD + "billing") == b"1"
    assert client.ttl(k) == -1  # a family's facts must persist


def test_index_scores_accounts_and_lists_the_paying_active(client: redis.Redis) -> None:
    names = ["scores", "last", "sum", "version", "usage_plan", "usage"]
    index_keys = [f"cs:{{health}}:{n}" for n in names]
    rows = [
        ["acme", 80.0, 1000.0, "1", True, "team", 990.0],
        ["globex", 40.0, 500.0, "1", False, "", 0.0],
    ]
    assert run(client, INDEX_LUA, index_keys, ["", pack(rows)]) == 0
    assert client.zrange(index_keys[0], 0, -1, withscores=True) == [
        (b"globex", 40.0),
        (b"acme", 80.0),
    ]
    assert float(client.get(index_keys[2]) or 0) == 120.0
    assert client.zrange(index_keys[5], 0, -1) == [b"acme"]
    assert client.zrange(index_keys[5] + ":team", 0, -1) == [b"acme"]
    assert client.hgetall(index_keys[4]) == {b"acme": b"team"}
    # an older version is ignored; the cutoff drops accounts quiet since before it
    stale = [["acme", 10.0, 1000.0, "1", True, "team", 990.0]]
    assert run(client, INDEX_LUA, index_keys, ["600", pack(stale)]) == 1
    assert client.zrange(index_keys[0], 0, -1, withscores=True) == [(b"acme", 80.0)]
    assert float(client.get(index_keys[2]) or 0) == 80.0


def test_index_forgets_due_accounts_whose_mirror_this_server_holds(client: redis.Redis) -> None:
    """Listed up to the offset and holding the facts written: forgotten; a mirror holding
    other facts (a promoted replica that missed the write) or a later listing: kept."""
    names = ["scores", "last", "sum", "version", "usage_plan", "usage"]
    index_keys = [f"cs:{{health}}:{n}" for n in names]
    due = keys.mirror_due(TAG)
    accounts = ["acme", "globex", "initech", "umbrella"]
    client.zadd(due, {"acme": 2, "globex": 2, "initech": 5})
    written = ['{"last":1.0}', '{"last":2.0}', '{"last":3.0}', '{"last":4.0}']
    for account, facts in zip(accounts, written, strict=True):
        client.hset(f"cs:acct:{{{account}}}", "tickets", facts)
    client.hset("cs:acct:{globex}", "tickets", '{"last":0.5}')  # an older mirror
    rows = [[a, 50.0, 1000.0, "1", False, "", 0.0] for a in accounts]
    args = ["", pack(rows), "tickets", "4", pack(written)]
    run(client, INDEX_LUA, [*index_keys, due], args)
    assert client.zrange(due, 0, -1, withscores=True) == [(b"globex", 2.0), (b"initech", 5.0)]
    assert client.zcard(index_keys[0]) == 4  # each indexed, whatever its due entry
