"""The demo stack's addresses in a file that later ``cspulse`` commands read.

``cspulse run --env-file .cspulse.env`` (what ``scripts/run`` does) writes
the Kafka and Redis addresses it started there; every other command run in
that directory reads the file before its options, so ``cspulse status`` or
``cspulse deadletter list`` find the demo stack without copying addresses
from a log line. Variables already set in the environment win over the
file; ``CSPULSE_ENV_FILE`` names another file. The file is parsed by
python-dotenv, as pydantic-settings' ``env_file`` is, and removed when
``run`` stops (unless someone rewrote it meanwhile).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from dotenv import dotenv_values

DEFAULT = ".cspulse.env"
PREFIX = "CSPULSE_"


def env_file_path() -> Path:
    """The file commands read: ``CSPULSE_ENV_FILE``, else ``.cspulse.env`` here."""
    return Path(os.environ.get("CSPULSE_ENV_FILE") or DEFAULT)


def load(path: Path | None = None) -> dict[str, str]:
    """Set each ``CSPULSE_*`` variable of the file that the environment lacks; returns them."""
    path = path or env_file_path()
    if not path.is_file():
        return {}
    added = {}
    for name, value in dotenv_values(path).items():
        if name.startswith(PREFIX) and value is not None and name not in os.environ:
            os.environ[name] = added[name] = value
    return added


def render(values: Mapping[str, str], comment: str) -> str:
    lines = [f"# {line}" for line in comment.splitlines()]
    lines += [f"{name}={value}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def written(path: Path | None, values: Mapping[str, str], comment: str) -> Iterator[None]:
    """Write ``values`` to ``path`` (owner-only) for as long as the block runs."""
    if path is None:
        yield
        return
    text = render(values, comment)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if path.read_text(encoding="utf-8") == text:
                path.unlink()
