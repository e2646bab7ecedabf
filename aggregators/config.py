"""The settings the metric definitions depend on (pure; no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    fault_injection_ids: frozenset[str] = frozenset()
    """Event ids whose processing raises: lets tests exercise the poison-message path."""
    session_state_ttl: int = 86400
    """How long a quiet session's event times are kept for late events to land in."""

    @property
    def granularities(self) -> tuple[int, ...]:
        return self.windows.granularities

    def entity_ttl(self, entity_key: str) -> int:
        """Seconds an entity's state outlives its last event (sessions are short-lived)."""
        if entity_key.startswith("s:"):
            return self.session_state_ttl
        longest = self.windows.longest
        return longest.seconds + longest.granularity


@dataclass(frozen=True)
class BatchClock:
    """The reading time a batch is judged against, and what it implies."""

    t: float
    cutoff: float
    """Earliest event time still in a retained bucket (older is too late)."""
