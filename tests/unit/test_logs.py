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


def test_url_passwords_are_redacted_in_every_url_form() -> None:
    from streams.logs import redact

    assert redact("at redis://:s3cret@h:6379/0 now") == "at redis://:***@h:6379/0 now"
    assert redact("rediss://cspulse:p%40ss@h:6380/1") == "rediss://cspulse:***@h:6380/1"
    assert redact("'redis://u:x@h'") == "'redis://u:***@h'"
    assert redact("redis://h:6379/0 and host:port") == "redis://h:6379/0 and host:port"
    assert redact("rediss://h/0?password=pw1&db=2") == "rediss://h/0?password=***&db=2"


def test_registered_secrets_are_scrubbed_from_logs_and_streams() -> None:
    from streams.logs import RedactingStream, redact, register_secrets

    register_secrets(["Tr0ub4dor&3", "ab"])
    assert redact("login Tr0ub4dor&3 / Tr0ub4dor%263 failed") == "login *** / *** failed"
    assert redact("ab stays: too short to scrub") == "ab stays: too short to scrub"
    target = io.StringIO()
    RedactingStream(target).write("password=Tr0ub4dor&3\n")
    assert target.getvalue() == "password=***\n"

    stream = io.StringIO()
    config = logging_config("json", "info")
    config["handlers"]["stderr"]["stream"] = stream
    logging.config.dictConfig(config)
    try:
        raise ConnectionError("AUTH Tr0ub4dor&3 for redis://:Tr0ub4dor&3@h:1")
    except ConnectionError:
        logging.getLogger("cspulse.test").exception("cannot reach redis://u:pw12@h:1")
    line = orjson.loads(stream.getvalue())
    assert line["message"] == "cannot reach redis://u:***@h:1"
    assert "Tr0ub4dor" not in line["exception"] and "ConnectionError" in line["exception"]
    logging.config.dictConfig(logging_config("text", "warning"))
