"""The contract cspulse implements travels with it, in docs/contract/.

The tests read that copy, so a clone of the project alone runs every contract check.
Where the shared upstream contract sits beside the project (the contract's home, one
level up in shared/spec/), the copy must be the same text: a changed contract fails
here until the copy, and the code, follow it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COPY = ROOT / "docs" / "contract"
UPSTREAM = ROOT.parent / "shared" / "spec"
DOCUMENTS = ("events.md", "metrics.md")


@pytest.mark.parametrize("name", DOCUMENTS)
def test_the_project_carries_the_contract(name: str) -> None:
    text = (COPY / name).read_text(encoding="utf-8")
    assert text.startswith("# "), f"docs/contract/{name} has no title"
    assert "(v1)" in text.splitlines()[0]


@pytest.mark.parametrize("name", DOCUMENTS)
def test_the_copy_matches_the_upstream_contract(name: str) -> None:
    upstream = UPSTREAM / name
    if not upstream.is_file():
        pytest.skip(f"no upstream contract beside this clone ({upstream.name}); the copy stands")
    assert (COPY / name).read_text(encoding="utf-8") == upstream.read_text(encoding="utf-8"), (
        f"docs/contract/{name} differs from the upstream contract: copy it over, "
        "then bring the code and docs in line with what changed"
    )
