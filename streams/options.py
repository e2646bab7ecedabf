"""Command-line options shared by several ``cspulse`` commands, declared once.

Each alias is a typer option (flag, environment variable, help) named like
the :class:`~streams.config.Settings` field it sets. The Kafka TLS and SASL
options, which every command that talks to Kafka takes, are added to a
command by :func:`with_kafka_security` in place of its ``security``
parameter, so a new command cannot forget one of them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

import typer

from streams.config import SaslMechanism, SecurityProtocol


def setting(field: str, help: str) -> Any:
    """The option that sets ``Settings.<field>``: its flag and variable are the field's name."""
    return typer.Option(
        f"--{field.replace('_', '-')}", envvar=f"CSPULSE_{field.upper()}", help=help
    )


Bootstrap = Annotated[str | None, setting("kafka_bootstrap", "Kafka host:port list.")]
RedisUrl = Annotated[
    str | None, setting("redis_url", "redis://[user:password@]host:port/db; rediss:// for TLS.")
]
RedisPassword = Annotated[
    str | None,
    setting(
        "redis_password",
        "Redis password, instead of one in the URL (prefer the variable to the flag).",
    ),
]
MetricsHost = Annotated[str, setting("metrics_host", "Address the HTTP port binds to.")]
WebConfigFile = Annotated[
    Path | None,
    setting(
        "web_config_file", "Web config (Prometheus exporter-toolkit format): TLS and basic auth."
    ),
]
MetricsPort = Annotated[int, setting("metrics_port", "Port of /metrics.")]
ClockOption = Annotated[str, setting("clock", "wall or watermark (deterministic replays).")]
TopicPrefix = Annotated[str, setting("topic_prefix", "Prefix of the topic names.")]
Windows = Annotated[str, setting("windows", "name:granularity list, e.g. 1h:60,1d:300.")]
History = Annotated[
    str,
    typer.Option(
        "--history",
        help="Publish this much realistic history first (e.g. 30d; 0 for none), then go live.",
    ),
]

_SECURITY: tuple[tuple[str, Any, str], ...] = (
    (
        "kafka_security_protocol",
        SecurityProtocol | None,
        "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (default PLAINTEXT).",
    ),
    (
        "kafka_sasl_mechanism",
        SaslMechanism | None,
        "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default PLAIN).",
    ),
    ("kafka_sasl_username", str | None, "SASL user name."),
    (
        "kafka_sasl_password",
        str | None,
        "SASL password (prefer the password file: flags show in process listings).",
    ),
    ("kafka_sasl_password_file", Path | None, "File holding the SASL password."),
    (
        "kafka_ssl_cafile",
        Path | None,
        "CA certificates that signed the brokers' (default: the system's).",
    ),
    ("kafka_ssl_certfile", Path | None, "Client certificate, for brokers that require mutual TLS."),
    ("kafka_ssl_keyfile", Path | None, "Its private key."),
)
KAFKA_SECURITY_OPTIONS: dict[str, Any] = {
    field: Annotated[kind, setting(field, help)] for field, kind, help in _SECURITY
}
"""Settings field -> its option: the TLS and SASL settings of the Kafka clients."""

KafkaSecurity = Mapping[str, Any]
"""The Kafka security options a command was given (None for those not given)."""
NO_SECURITY: KafkaSecurity = MappingProxyType({})


def with_kafka_security(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with the options of :data:`KAFKA_SECURITY_OPTIONS` in place of its
    ``security`` parameter (they keep that place in ``--help``); it receives them
    as one mapping in ``security``."""
    signature = inspect.signature(command, eval_str=True)
    params: list[inspect.Parameter] = []
    for param in signature.parameters.values():
        if param.name != "security":
            params.append(param)
            continue
        params += [
            inspect.Parameter(name, param.POSITIONAL_OR_KEYWORD, default=None, annotation=option)
            for name, option in KAFKA_SECURITY_OPTIONS.items()
        ]

    def with_options(**given: Any) -> None:
        security = {name: given.pop(name) for name in KAFKA_SECURITY_OPTIONS}
        command(**given, security=security)

    with_options.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    with_options.__annotations__ = {p.name: p.annotation for p in params}
    for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
        setattr(with_options, attribute, getattr(command, attribute))
    return with_options
