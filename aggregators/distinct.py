"""Distinct users and accounts over every usage partition, counted exactly.

Each usage partition keeps a last-seen sorted set per name (member -> latest
event time, :func:`aggregators.keys.last_seen`). A window counts the members
whose latest time is at or after its first bucket. One ``user_id`` can be
active in two accounts whose events sit in different partitions (an agency
seat, a consultant), so per-partition counts may not be added up: the union
is taken here instead.

With one usage partition, :data:`DISTINCT_LUA` returns the counts (nothing to
merge). With several, it returns each partition's members grouped by the
newest window start their latest time reaches, and :meth:`DistinctQuery.counts`
unites them, so a member counts once in every window it is active in. Every
call declares one partition's keys only, so it runs on Redis Cluster too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from aggregators import keys, plans
from aggregators.families import sessions
from aggregators.scripts import script
from aggregators.windows import WindowSet

DISTINCT_LUA = script("distinct")
"""One partition's last-seen sets (every key but the last, the guard), per window start
``bounds[j]`` (ascending): the count of members at or after it, or (``ARGV[2] == '1'``)
the members from it up to the next start."""


def distinct_names(
    plan_labels: Iterable[str], bases: Sequence[str] = (sessions.USERS, sessions.ACCOUNTS)
) -> list[str]:
    """Each distinct count (users and accounts by default), whole base and per plan label."""
    labels = list(plan_labels)
    return [name for base in bases for name in (base, *(plans.segmented(base, p) for p in labels))]


@dataclass(frozen=True)
class DistinctQuery:
    """The distinct counts of one scrape: what each partition is asked, and the merge."""

    tags: tuple[str, ...]
    names: tuple[str, ...]
    bounds: tuple[int, ...]
    """The windows' first-bucket starts, ascending, each once."""
    windows: tuple[tuple[str, int], ...]
    """Window name -> index of its start in :attr:`bounds`."""

    @classmethod
    def at(
        cls, windows: WindowSet, t: float, names: Iterable[str], tags: Iterable[str]
    ) -> DistinctQuery:
        starts = {w.name: w.bucket_range(t)[0] * w.granularity for w in windows}
        bounds = tuple(sorted(set(starts.values())))
        index = tuple((name, bounds.index(start)) for name, start in starts.items())
        return cls(tuple(tags), tuple(names), bounds, index)

    @property
    def merges(self) -> bool:
        """Several partitions: members come back and are united here."""
        return len(self.tags) > 1

    def call(self, tag: str) -> list[Any]:
        """``numkeys, keys..., args...`` of the :data:`DISTINCT_LUA` call for ``tag``."""
        declared = [*(keys.last_seen(tag, n) for n in self.names), keys.guard(tag)]
        bounds = msgspec.msgpack.encode([str(b) for b in self.bounds])
        return [len(declared), *declared, bounds, "1" if self.merges else "0"]

    def counts(self, replies: Sequence[Any]) -> dict[tuple[str, str], int]:
        """(name, window) -> distinct members, from one reply per tag (in tag order)."""
        out: dict[tuple[str, str], int] = {}
        for i, name in enumerate(self.names):
            if self.merges:
                per_bound = united([reply[i] for reply in replies])
            else:
                per_bound = [int(n) for n in replies[0][i]] if replies else []
            if not per_bound:
                continue
            for window, j in self.windows:
                out[(name, window)] = per_bound[j]
        return out


def united(groups: Sequence[Sequence[Sequence[bytes]]]) -> list[int]:
    """Per bound: members of any partition whose group is at or after it, each once.

    ``groups[p][j]`` holds partition ``p``'s members whose latest time is from
    bound ``j`` up to the next; a member's latest time over all partitions is
    its newest group, so walking the bounds newest first and counting the
    members met so far counts each member in exactly the windows it is in.
    """
    if not groups:
        return []
    seen: set[bytes] = set()
    out = [0] * len(groups[0])
    for j in reversed(range(len(out))):
        for per_partition in groups:
            seen.update(per_partition[j])
        out[j] = len(seen)
    return out
