"""Configuration from ``CSPULSE_*`` environment variables (and matching CLI flags)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from aggregators.clock import Clock, ClockName
from aggregators.config import DEFAULT_CSAT_THRESHOLDS, MetricConfig
from aggregators.windows import DEFAULT_WINDOWS, WindowSet
from schemas.models import FAMILY_NAMES

FAMILY_TOPICS = FAMILY_NAMES
"""The event topics, by suffix: one per family."""

METRIC_DEFAULTS = MetricConfig()
"""The metric settings' defaults live in :class:`MetricConfig`; the fields below take them."""

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class Settings(BaseSettings):
    """Every knob of a cspulse process. Unset services mean "start embedded ones"."""

    model_config = SettingsConfigDict(env_prefix="CSPULSE_", extra="ignore")

    kafka_bootstrap: str | None = Field(None, description="host:port[,host:port]")
    redis_url: str | None = Field(
        None, description="redis://[user:password@]host:port/db, or rediss:// for TLS"
    )
    redis_password: SecretStr | None = Field(
        None, description="Redis password (or ACL user's), kept out of the URL"
    )
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = Field(
        None, description="file holding the SASL password (its last newline is ignored)"
    )
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle that signed the brokers")
    kafka_ssl_certfile: Path | None = Field(None, description="client certificate (mutual TLS)")
    kafka_ssl_keyfile: Path | None = Field(None, description="client certificate's private key")
    metrics_port: int = 9464
    metrics_host: str = "0.0.0.0"
    web_config_file: Path | None = Field(
        None, description="exporter-toolkit web config: TLS and basic auth of the HTTP port"
    )
    web_max_connections: int = Field(
        128, ge=1, description="open HTTP connections at most; more are refused"
    )
    web_request_timeout: float = Field(
        10.0, gt=0, description="seconds a client has to send its request (and between requests)"
    )
    ingest_port: int = 9465
    ingest_host: str = "0.0.0.0"
    ingest_max_body: int = Field(1 << 20, ge=1, description="bytes of one ingest request body")
    ingest_ack_timeout: float = Field(
        10.0, gt=0, description="seconds to wait for Kafka's ack before answering 503"
    )
    ingest_idempotent: bool = Field(
        True, description="idempotent producer (Tansu, the embedded broker, lacks it)"
    )
    stripe_webhook_secret: SecretStr | None = Field(None, description="whsec_... of the endpoint")
    stripe_tolerance: int = Field(300, ge=1, description="seconds a Stripe signature is valid")
    stripe_account_key: str = Field("account_id", description="metadata key naming the account")
    stripe_plan_from: Literal["nickname", "product", "price"] = "nickname"
    zendesk_webhook_secret: SecretStr | None = None
    zendesk_tolerance: int = Field(300, ge=1, description="seconds a Zendesk signature is valid")
    segment_shared_secret: SecretStr | None = None
    clock: ClockName = Clock().name
    topic_prefix: str = "cs."
    windows: str = DEFAULT_WINDOWS
    app_id: str = "cspulse"
    partitions: int = Field(4, description="partitions per topic when cspulse creates them")
    idle_timeout: float = METRIC_DEFAULTS.idle_timeout
    currency: str = METRIC_DEFAULTS.currency
    dedup_horizon: int = METRIC_DEFAULTS.dedup_horizon
    max_plans: int = METRIC_DEFAULTS.max_plans
    plan_lateness: float = Field(
        METRIC_DEFAULTS.plan_lateness,
        ge=0,
        description="seconds a plan change may trail the events it covers (per-plan waits)",
    )
    plan_wait_max: float = Field(
        300.0,
        gt=0,
        description="seconds an event waits for its account's billing partition at most",
    )
    csat_thresholds: str = Field(
        ",".join(f"{scale}:{low:g}" for scale, low in DEFAULT_CSAT_THRESHOLDS.items()),
        description="scale:lowest satisfied score, per CSAT scale",
    )
    sentiment_threshold: float = METRIC_DEFAULTS.sentiment_threshold
    health_config: str | None = Field(None, description="TOML file with health weights and bands")
    gross_margin: float = METRIC_DEFAULTS.gross_margin
    session_timeout: float = Field(
        30.0, description="seconds before the group gives a silent worker's partitions away"
    )
    processing_error_cap: int = Field(
        100,
        ge=0,
        description="events a partition may dead-letter per minute for an exception in a "
        "family's code; past it the worker stops",
    )
    batch_max: int = 2000
    batch_within: float = Field(
        0.5,
        ge=0,
        description="seconds a worker tops up a batch under batch_max before applying it",
    )
    log_format: Literal["text", "json"] = "text"
    log_level: str = "info"

    @model_validator(mode="after")
    def _kafka_security_complete(self) -> Settings:
        if self.kafka_sasl_password is not None and self.kafka_sasl_password_file is not None:
            raise ValueError(
                "set CSPULSE_KAFKA_SASL_PASSWORD or CSPULSE_KAFKA_SASL_PASSWORD_FILE, not both"
            )
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username
            and (self.kafka_sasl_password is not None or self.kafka_sasl_password_file)
        ):
            raise ValueError(
                f"CSPULSE_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "CSPULSE_KAFKA_SASL_USERNAME and CSPULSE_KAFKA_SASL_PASSWORD "
                "(or CSPULSE_KAFKA_SASL_PASSWORD_FILE)"
            )
        if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
            raise ValueError("CSPULSE_KAFKA_SSL_KEYFILE needs CSPULSE_KAFKA_SSL_CERTFILE")
        return self

    def sasl_password(self) -> str | None:
        """The SASL password from the setting or its file, read when a client is built."""
        if self.kafka_sasl_password is not None:
            return self.kafka_sasl_password.get_secret_value()
        if self.kafka_sasl_password_file is None:
            return None
        try:
            text = self.kafka_sasl_password_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(
                f"cannot read CSPULSE_KAFKA_SASL_PASSWORD_FILE {self.kafka_sasl_password_file}: "
                f"{exc.strerror}"
            ) from None
        return text.removesuffix("\n").removesuffix("\r")

    def redis_options(self) -> dict[str, Any]:
        """Extra keyword arguments for ``Redis.from_url``: the password, when set apart."""
        if self.redis_password is None:
            return {}
        return {"password": self.redis_password.get_secret_value()}

    def secrets(self) -> list[str]:
        """Every secret value configured, so output can be scrubbed of them."""
        from streams.logs import url_password

        found = [url_password(self.redis_url or "")]
        if self.redis_password is not None:
            found.append(self.redis_password.get_secret_value())
        with contextlib.suppress(ValueError):  # an unreadable file is reported elsewhere
            found.append(self.sasl_password())
        for source in self.source_secrets().values():
            found.append(source or "")
        return [s for s in found if s]

    def source_secrets(self) -> dict[str, str | None]:
        """Each signed ingest source -> its secret (None: the source is refused)."""
        given = {
            "stripe": self.stripe_webhook_secret,
            "zendesk": self.zendesk_webhook_secret,
            "segment": self.segment_shared_secret,
        }
        return {k: v.get_secret_value() if v else None for k, v in given.items()}

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
            plan_topic=self.topic("billing"),
            plan_lateness=self.plan_lateness,
            csat_thresholds=parse_thresholds(self.csat_thresholds),
            sentiment_threshold=self.sentiment_threshold,
        )


DEFAULTS = Settings.model_construct()
"""Every setting at its default, the environment ignored: what the command-line
flags show in ``--help``."""


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
