"""Log setup and secret redaction.

Logs are human-readable text by default, one JSON object per line on
request. Every line cspulse writes goes through :func:`redact`: a URL's
password (``redis://user:secret@host``) and every secret value configured
(:func:`register_secrets`) are replaced by ``***`` before they reach a
terminal, a log collector or an error report.
"""

from __future__ import annotations

import io
import logging
import re
import sys
import threading
from collections.abc import Iterable
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

MASK = "***"
MIN_SECRET_LENGTH = 4
"""Shorter values are not scrubbed on their own: they would mask ordinary words."""

_URL_CREDENTIALS = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:@/\s'\"]*):(?P<password>[^@/\s'\"]*)@"
)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:password|ssl_password)=)[^&\s'\"]*")
_secrets: set[str] = set()
_lock = threading.Lock()


def url_password(url: str) -> str | None:
    """The password of a URL (user info, else a ``password=`` query parameter), or None."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return None
    if password:
        return unquote(password)
    return parse_qs(parts.query).get("password", [None])[0]


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember secret values (and their URL-encoded spelling) to scrub from output."""
    from urllib.parse import quote

    with _lock:
        for value in values:
            if value and len(value) >= MIN_SECRET_LENGTH:
                _secrets.update({value, quote(value, safe="")})


def redact(text: str) -> str:
    """``text`` with URL passwords and registered secrets replaced by ``***``."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['head']}:{MASK}@", text)
    text = _QUERY_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingStream(io.TextIOBase):
    """A text stream that scrubs secrets from everything written through it."""

    def __init__(self, target: TextIO) -> None:
        self.target = target

    def write(self, text: str) -> int:
        self.target.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.target.encoding


def redact_standard_streams() -> None:
    """Route ``sys.stdout`` and ``sys.stderr`` through :func:`redact` (idempotent)."""
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)


class TextFormatter(logging.Formatter):
    """The plain text format, secrets redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage().strip()),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


def logging_config(fmt: str, level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for every cspulse command (applied at start)."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if fmt == "json"
        else {
            "()": f"{__name__}.TextFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }
