"""The settings the metric definitions depend on (pure; no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aggregators.entity_keys import SESSION
from aggregators.windows import DEFAULT_WINDOWS, WindowSet

DEFAULT_CSAT_THRESHOLDS: dict[int, float] = {5: 4.0, 7: 6.0, 10: 8.0}


@dataclass(frozen=True)
class MetricConfig:
    """Everything that changes a number on the dashboards."""

    windows: WindowSet = field(default_factory=lambda: WindowSet.parse(DEFAULT_WINDOWS))
    idle_timeout: float = 1800.0
    csat_thresholds: dict[int, float] = field(default_factory=lambda: dict(DEFAULT_CSAT_THRESHOLDS))
    gross_margin: float = 1.0
    currency: str = "USD"
    dedup_horizon: int = 86400
    max_plans: int = 20
    """Distinct plan labels reported; later plans are reported as ``other``."""
    sentiment_threshold: float = 0.05
    """VADER compound score at or beyond which a comment is positive/negative."""
    session_state_ttl: int = 86400
    """How long a quiet session's event times are kept for late events to land in."""
    plan_topic: str = "cs.billing"
    """The topic whose plan-naming events decide each account's plan (its partition p is
    co-partitioned with partition p of every other topic: same key, same partition)."""
    plan_lateness: float = 3600.0
    """Seconds a plan-naming event may trail the events it covers: an event of time T is
    attributed once the account's billing partition passed T plus this, or was read to
    its end."""

    @property
    def plan_history_kept(self) -> float:
        """Seconds of plan history kept behind the billing partition's stream time (older
        entries collapse into the plan in force then)."""
        return self.retention + self.plan_lateness

    @property
    def granularities(self) -> tuple[int, ...]:
        return self.windows.granularities

    @property
    def retention(self) -> int:
        """Seconds state about an account outlives its last event: the longest window
        plus one bucket."""
        longest = self.windows.longest
        return longest.seconds + longest.granularity

    def entity_ttl(self, kind: str) -> int:
        """Seconds an entity's state outlives its last event (sessions are short-lived)."""
        return self.session_state_ttl if kind == SESSION else self.retention


@dataclass(frozen=True)
class BatchClock:
    """The time a batch of one partition is judged against.

    ``t`` is the partition's stream time (the largest event time applied in
    that topic partition, with ``clock=watermark``) or the wall clock.
    """

    t: float
    cutoff: float
    """Earliest event time still in a retained bucket at ``t`` (older is too late)."""
    advancing: bool = False
    """True for stream time: ``t`` moves forward with the batch's own events."""
