"""The per-script split of Redis's SLOWLOG: each EVALSHA owns the script commands logged
since the one before it; commands sent on their own are counted apart."""

from bench.slowlog import OUTSIDE, by_script, script_lines

SCRIPT, CLIENT = b"?:0", b"127.0.0.1:5000"


def entry(i: int, command: bytes, duration: int, address: bytes = SCRIPT) -> dict[str, object]:
    return {"id": i, "command": command, "duration": duration, "client_address": address}


def test_each_script_owns_the_commands_logged_before_it() -> None:
    log = [
        entry(0, b"ZADD k 1 a", 50),  # its script's entry was dropped: not counted
        entry(1, b"EVALSHA aaa 1 k", 70, CLIENT),
        entry(2, b"HSET m f 1", 10),
        entry(3, b"MGET x y", 9, CLIENT),
        entry(4, b"ZADD k 2 b", 30),
        entry(5, b"EVALSHA aaa 1 k", 100, CLIENT),
        entry(6, b"EVALSHA bbb 0", 5, CLIENT),
    ]
    costs = by_script(reversed(log), {"aaa": "apply"})  # SLOWLOG GET gives newest first
    apply, other, alone = costs["apply"], costs["bbb"], costs[OUTSIDE]
    assert (apply.calls, apply.total, apply.commands, apply.in_commands, apply.own) == (
        1, 100, 2, 40, 60)  # fmt: skip
    assert (other.calls, other.commands, other.own) == (1, 0, 5)
    assert (alone.calls, alone.total) == (1, 9)  # the MGET
    lines = script_lines(costs)
    assert [line.split()[0] for line in lines] == ["apply", OUTSIDE.split()[0], "bbb"]
    assert "µs/call   100.0:    2.0 commands    40.0, the script's own    60.0" in lines[0]
