"""``cspulse status`` finds the stack through the env file ``cspulse run`` writes.

Run from a directory holding ``.cspulse.env`` with an environment without
any ``CSPULSE_*`` variable, as a newcomer's second terminal would be.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from streams import envfile
from tests.harness import Stack, publish
from tests.integration.conftest import fresh_names


def test_status_reads_the_env_file_and_prints_no_library_logs(stack: Stack, tmp_path: Path) -> None:
    prefix, _group = fresh_names(stack)
    publish(stack.bootstrap, [(f"{prefix}tickets", b"k", b"not json")] * 3)
    values = {
        "CSPULSE_KAFKA_BOOTSTRAP": stack.bootstrap,
        "CSPULSE_REDIS_URL": stack.redis_url,
        "CSPULSE_TOPIC_PREFIX": prefix,
    }
    with envfile.written(tmp_path / envfile.DEFAULT, values, "test"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CSPULSE_")}
        done = subprocess.run(
            [sys.executable, "-m", "streams", "status"],
            cwd=tmp_path,
            env={**env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == "", done.stderr  # no aiokafka INFO lines before the table
    lines = done.stdout.splitlines()
    assert lines[0].split()[:5] == ["topic", "partition", "applied", "end", "lag"]
    ends = {
        (cells[0], cells[1]): cells[2:5]
        for cells in (line.split() for line in lines[1:])
        if cells and cells[0].startswith(prefix)
    }
    assert len(ends) == 8, done.stdout  # 4 event topics x 2 partitions
    # the three messages went to one tickets partition (one key); nothing applied yet
    tickets = [v for (topic, _p), v in ends.items() if topic == f"{prefix}tickets"]
    assert sorted(tickets) == [["-", "0", "0"], ["-", "3", "3"]], done.stdout
    assert "total lag: 3 message(s)" in done.stdout
    assert "end = applied + 1 and lag 0" in done.stdout
    assert not (tmp_path / envfile.DEFAULT).exists()  # removed with the block
