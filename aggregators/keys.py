"""The Redis key layout, in one place.

Every key a batch writes carries the hash tag of its Kafka topic-partition,
``{<topic>:<partition>}``, so one batch touches one hash slot: the atomic
apply script works unchanged on Redis Cluster, and partitions are summed
at read time. Untagged: the partition registry and the admitted plan labels
(``cs:plan_names``); the health keys are in
:mod:`aggregators.health_index`.

=================================  ==========================================
key                                holds
=================================  ==========================================
``cs:layout``                      integer: the layout version of every key
                                   below (:mod:`aggregators.layout`)
``cs:partitions``                  hash: partition tag -> event family
``cs:plan_names``                  set: admitted plan labels
``cs:{tp}:meta``                   hash: ``offset`` applied, ``max_ts``,
                                   window cursors ``c:<window>``, newest
                                   bucket written ``k:<g>``
``cs:{tp}:applied_at``             wall-clock time of the latest apply
``cs:{tp}:b:<g>:<bucket>``         hash: counter field -> amount (TTL)
``cs:{tp}:w:<window>``             hash: counter field -> rolling sum of the
                                   window's buckets from the cursor
                                   ``c:<window>`` (a meta field) on
``cs:{tp}:z:<name>``               sorted set: user/account -> latest event time
``cs:{tp}:g``                      hash: gauge field -> amount (backlog, MRR)
``cs:{tp}:e:<entity>``             msgpack state of a ticket/session/account
``cs:{tp}:live``                   sorted set: live session -> latest time
``cs:{tp}:ph:<account>``           sorted set (billing partitions): the
                                   account's plan-naming events,
                                   ``<offset>|<plan label>`` scored by event
                                   time, kept ``plan_history_kept`` behind
                                   the partition's stream time
``cs:{tp}:seen``                   sorted set: event-id digest -> Kafka
                                   record timestamp of its first copy
``cs:{tp}:mirror_due``             sorted set: account -> offset of the batch
                                   whose facts are not yet mirrored into the
                                   health keys (see :func:`mirror_due`)
``cs:{tp}:guard``                  never written: declared by every script
                                   (see :func:`guard`)
=================================  ==========================================
"""

from __future__ import annotations

PREFIX = "cs"
REGISTRY = f"{PREFIX}:partitions"
LAYOUT = f"{PREFIX}:layout"
"""integer: the layout version (:data:`aggregators.layout.LAYOUT_VERSION`) of what is kept."""
PLAN_NAMES = f"{PREFIX}:plan_names"
"""set: the plan labels admitted so far (at most ``max_plans``; the rest are ``other``)."""


# Reserved field names: Python uses these constants, the Lua scripts get them as
# locals of the same names (aggregators/scripts.py), neither repeats the text.
OFFSET = "offset"
"""meta field: the partition's applied offset."""
MAX_TS = "max_ts"
"""meta field: the partition's stream time (newest event time applied)."""
CURSOR = "c:"
"""meta field prefix: ``c:<window>``, the window's cursor (first bucket of its sum)."""
NEWEST = "k:"
"""meta field prefix: ``k:<g>``, the newest bucket of granularity ``g`` written."""
VERSION_FIELD = "~version"
"""health mirror field: the mirror's version."""
KEEP_FIELD = "~keep:"
"""health mirror field prefix: ``~keep:<family>``, that family's facts must persist."""
OTHER_PLAN = "other"
"""The plan label of plans past the bound (``aggregators.plans.OTHER``)."""

LUA_NAMES: dict[str, str] = {
    "OFFSET": OFFSET,
    "MAX_TS": MAX_TS,
    "CURSOR": CURSOR,
    "NEWEST": NEWEST,
    "VERSION_FIELD": VERSION_FIELD,
    "KEEP_FIELD": KEEP_FIELD,
    "OTHER": OTHER_PLAN,
}
"""Lua local -> reserved name, declared at the top of every script."""


def cursor(window: str) -> str:
    return CURSOR + window


def newest(granularity: int) -> str:
    return f"{NEWEST}{granularity}"


def partition_tag(topic: str, partition: int) -> str:
    """The hash tag shared by every key of one topic-partition."""
    return f"{{{topic}:{partition}}}"


def meta(tag: str) -> str:
    return f"{PREFIX}:{tag}:meta"


def applied_at(tag: str) -> str:
    return f"{PREFIX}:{tag}:applied_at"


def bucket(tag: str, granularity: int, index: int) -> str:
    return f"{PREFIX}:{tag}:b:{granularity}:{index}"


def guard(tag: str) -> str:
    """A key never written, declared by every script of the partition.

    The rolling-window code reads bucket keys it builds itself. On Redis
    Cluster, a script whose declared keys are not all on the node while its
    slot migrates gets TRYAGAIN instead of running: this always-missing key
    makes that true for every script, so none reads a half-moved slot.
    """
    return f"{PREFIX}:{tag}:guard"


def bucket_prefix(tag: str) -> str:
    """What :func:`bucket` keys start with; Lua appends ``<g>:<bucket>``."""
    return f"{PREFIX}:{tag}:b:"


def window(tag: str, name: str) -> str:
    """Rolling sum of one window's buckets (see :mod:`aggregators.rolling`)."""
    return f"{PREFIX}:{tag}:w:{name}"


def last_seen(tag: str, name: str) -> str:
    return f"{PREFIX}:{tag}:z:{name}"


def gauges(tag: str) -> str:
    return f"{PREFIX}:{tag}:g"


def entity(tag: str, key: str) -> str:
    return f"{PREFIX}:{tag}:e:{key}"


def live_sessions(tag: str) -> str:
    return f"{PREFIX}:{tag}:live"


def plan_history(tag: str, account: str) -> str:
    """An account's plan over event time, in its billing partition's slot (so the
    billing apply writes it atomically, also on Redis Cluster)."""
    return f"{PREFIX}:{tag}:ph:{account}"


def seen(tag: str) -> str:
    """Dedup index: digests of applied (or too-late) ids, scored by their record's Kafka
    timestamp, pruned a horizon behind the newest record applied."""
    return f"{PREFIX}:{tag}:seen"


def mirror_due(tag: str) -> str:
    """Accounts whose facts a batch changed, until the worker has mirrored them.

    Written by the atomic apply, cleared by the health index script where the
    mirror holds the facts written: a worker that dies in between, or a failover
    to a replica without the mirror, leaves them for the partition's owner to mirror.
    """
    return f"{PREFIX}:{tag}:mirror_due"


def text(value: bytes | str) -> str:
    """Redis replies are bytes (no decode_responses): decode them in one place."""
    return value.decode() if isinstance(value, bytes) else value
