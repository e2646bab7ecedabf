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

Bootstrap = Annotated[
    str | None,
    typer.Option(
        "--kafka-bootstrap", envvar="CSPULSE_KAFKA_BOOTSTRAP", help="Kafka host:port list."
    ),
]
RedisUrl = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        envvar="CSPULSE_REDIS_URL",
        help="redis://[user:password@]host:port/db; rediss:// for TLS.",
    ),
]
RedisPassword = Annotated[
    str | None,
    typer.Option(
        "--redis-password",
        envvar="CSPULSE_REDIS_PASSWORD",
        help="Redis password, instead of one in the URL (prefer the variable to the flag).",
    ),
]
MetricsHost = Annotated[
    str,
    typer.Option(
        "--metrics-host", envvar="CSPULSE_METRICS_HOST", help="Address the HTTP port binds to."
    ),
]
WebConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--web-config-file",
        envvar="CSPULSE_WEB_CONFIG_FILE",
        help="Web config (Prometheus exporter-toolkit format): TLS and basic auth.",
    ),
]
MetricsPort = Annotated[
    int, typer.Option("--metrics-port", envvar="CSPULSE_METRICS_PORT", help="Port of /metrics.")
]
ClockOption = Annotated[
    str,
    typer.Option(
        "--clock", envvar="CSPULSE_CLOCK", help="wall or watermark (deterministic replays)."
    ),
]
TopicPrefix = Annotated[
    str,
    typer.Option(
        "--topic-prefix", envvar="CSPULSE_TOPIC_PREFIX", help="Prefix of the topic names."
    ),
]
History = Annotated[
    str,
    typer.Option(
        "--history",
        help="Publish this much realistic history first (e.g. 30d; 0 for none), then go live.",
    ),
]
Windows = Annotated[
    str,
    typer.Option(
        "--windows", envvar="CSPULSE_WINDOWS", help="name:granularity list, e.g. 1h:60,1d:300."
    ),
]


KAFKA_SECURITY_OPTIONS: dict[str, Any] = {
    "kafka_security_protocol": Annotated[
        SecurityProtocol | None,
        typer.Option(
            "--kafka-security-protocol",
            envvar="CSPULSE_KAFKA_SECURITY_PROTOCOL",
            help="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (default PLAINTEXT).",
        ),
    ],
    "kafka_sasl_mechanism": Annotated[
        SaslMechanism | None,
        typer.Option(
            "--kafka-sasl-mechanism",
            envvar="CSPULSE_KAFKA_SASL_MECHANISM",
            help="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default PLAIN).",
        ),
    ],
    "kafka_sasl_username": Annotated[
        str | None,
        typer.Option(
            "--kafka-sasl-username", envvar="CSPULSE_KAFKA_SASL_USERNAME", help="SASL user name."
        ),
    ],
    "kafka_sasl_password": Annotated[
        str | None,
        typer.Option(
            "--kafka-sasl-password",
            envvar="CSPULSE_KAFKA_SASL_PASSWORD",
            help="SASL password (prefer the password file: flags show in process listings).",
        ),
    ],
    "kafka_sasl_password_file": Annotated[
        Path | None,
        typer.Option(
            "--kafka-sasl-password-file",
            envvar="CSPULSE_KAFKA_SASL_PASSWORD_FILE",
            help="File holding the SASL password.",
        ),
    ],
    "kafka_ssl_cafile": Annotated[
        Path | None,
        typer.Option(
            "--kafka-ssl-cafile",
            envvar="CSPULSE_KAFKA_SSL_CAFILE",
            help="CA certificates that signed the brokers' (default: the system's).",
        ),
    ],
    "kafka_ssl_certfile": Annotated[
        Path | None,
        typer.Option(
            "--kafka-ssl-certfile",
            envvar="CSPULSE_KAFKA_SSL_CERTFILE",
            help="Client certificate, for brokers that require mutual TLS.",
        ),
    ],
    "kafka_ssl_keyfile": Annotated[
        Path | None,
        typer.Option(
            "--kafka-ssl-keyfile", envvar="CSPULSE_KAFKA_SSL_KEYFILE", help="Its private key."
        ),
    ],
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
