"""JSON logs: one parseable object per line, exceptions included."""

from __future__ import annotations

import io
import logging
import logging.config

import orjson

from streams.logs import logging_config


def test_json_format_writes_one_object_per_line() -> None:
    stream = io.StringIO()
    config = logging_config("json", "info")
    config["handlers"]["stderr"]["stream"] = stream
    logging.config.dictConfig(config)
    log = logging.getLogger("cspulse.test")
    log.info("applied %d events", 3)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == "applied 3 events"
    assert lines[0]["level"] == "info" and lines[0]["logger"] == "cspulse.test"
    assert lines[1]["level"] == "error" and "ValueError: boom" in lines[1]["exception"]
    logging.config.dictConfig(logging_config("text", "warning"))
