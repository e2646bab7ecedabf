"""The Lua scripts: ``aggregators/lua/*.lua``, read once, reserved names declared.

Each file starts with a comment naming its KEYS and ARGV. A script is the
declarations of :data:`aggregators.keys.LUA_NAMES` (``local OFFSET, ... =
'offset', ...``), then its files in order: the field names live in
:mod:`aggregators.keys` only, and Lua refers to them by name.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from aggregators.keys import LUA_NAMES


def _quoted(value: str) -> str:
    assert "'" not in value and "\\" not in value, value
    return f"'{value}'"


PREAMBLE = f"local {', '.join(LUA_NAMES)} = {', '.join(_quoted(v) for v in LUA_NAMES.values())}\n"
"""The reserved names as Lua locals, first line of every script."""


@cache
def source(name: str) -> str:
    """One ``.lua`` file's text."""
    return resources.files("aggregators").joinpath("lua", f"{name}.lua").read_text()


def script(*names: str, header: str = "") -> str:
    """The script made of the files ``names`` (in order), after the reserved names and
    ``header`` (generated declarations)."""
    return PREAMBLE + header + "".join(source(name) for name in names)
