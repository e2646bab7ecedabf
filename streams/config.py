"""Configuration from ``CSPULSE_*`` environment variables (and matching CLI flags)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from aggregators.config import MetricConfig
from aggregators.windows import DEFAULT_WINDOWS, WindowSet

FAMILY_TOPICS = ("tickets", "surveys", "logins", "billing")


class Settings(BaseSettings):
    """Every knob of a cspulse process. Unset services mean "start embedded ones"."""

    model_config = SettingsConfigDict(env_prefix="CSPULSE_", extra="ignore")

    kafka_bootstrap: str | None = Field(None, description="host:port[,host:port]")
    redis_url: str | None = Field(None, description="redis://host:port/db")
    metrics_port: int = 9464
    metrics_host: str = "0.0.0.0"
    clock: Literal["wall", "watermark"] = "wall"
    topic_prefix: str = "cs."
    windows: str = DEFAULT_WINDOWS
    app_id: str = "cspulse"
    partitions: int = Field(4, description="partitions per topic when cspulse creates them")
    idle_timeout: float = 1800.0
    currency: str = "USD"
    dedup_horizon: int = 86400
    max_plans: int = 20
    csat_thresholds: str = Field(
        "5:4,7:6,10:8", description="scale:lowest satisfied score, per CSAT scale"
    )
    sentiment_threshold: float = 0.05
    health_config: str | None = Field(None, description="TOML file with health weights and bands")
    gross_margin: float = 1.0
    session_timeout: float = Field(
        30.0, description="seconds before the group gives a silent worker's partitions away"
    )
    fault_injection_ids: str = Field(
        "", description="comma-separated event ids whose processing raises (tests only)"
    )
    batch_max: int = 2000
    batch_within: float = 0.05
    log_format: Literal["text", "json"] = "text"
    log_level: str = "info"

    @field_validator("csat_thresholds")
    @classmethod
    def _thresholds_parse(cls, value: str) -> str:
        parse_thresholds(value)
        return value

    @field_validator("windows")
    @classmethod
    def _windows_parse(cls, value: str) -> str:
        WindowSet.parse(value)
        return value

    def topic(self, family: str) -> str:
        return f"{self.topic_prefix}{family}"

    @property
    def deadletter_topic(self) -> str:
        return f"{self.topic_prefix}deadletter"

    @property
    def all_topics(self) -> list[str]:
        return [self.topic(f) for f in FAMILY_TOPICS] + [self.deadletter_topic]

    def family_of(self, topic: str) -> str | None:
        suffix = topic.removeprefix(self.topic_prefix)
        return suffix if suffix in FAMILY_TOPICS else None

    def metric_config(self) -> MetricConfig:
        return MetricConfig(
            windows=WindowSet.parse(self.windows),
            idle_timeout=self.idle_timeout,
            currency=self.currency,
            dedup_horizon=self.dedup_horizon,
            gross_margin=self.gross_margin,
            max_plans=self.max_plans,
            csat_thresholds=parse_thresholds(self.csat_thresholds),
            sentiment_threshold=self.sentiment_threshold,
            fault_injection_ids=frozenset(i for i in self.fault_injection_ids.split(",") if i),
        )


def parse_thresholds(text: str) -> dict[int, float]:
    """``5:4,7:6,10:8`` -> {5: 4.0, 7: 6.0, 10: 8.0}; every scale of the contract is needed."""
    out: dict[int, float] = {}
    for part in text.split(","):
        scale, _, threshold = part.partition(":")
        try:
            out[int(scale)] = float(threshold)
        except ValueError:
            raise ValueError(f"not scale:threshold: {part!r} (e.g. 5:4,7:6,10:8)") from None
    missing = {5, 7, 10} - set(out)
    if missing:
        raise ValueError(f"CSAT thresholds lack the scales {sorted(missing)}")
    return out
