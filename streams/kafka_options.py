"""Connection options shared by every Kafka client cspulse creates.

The worker's consumer and dead-letter producer, ``topics create`` and the
generator all build their aiokafka clients from :func:`client_options`, so a
connection setting (TLS, SASL) is added in one place and reaches all of them.
:func:`describe_failure` turns what a client raised into one line that says
what went wrong and which setting to look at.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    IllegalSaslStateError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context

from streams.config import Settings

AUTHORIZATION_ERRORS = (
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    ClusterAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
AUTHENTICATION_ERRORS = (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
    IllegalSaslStateError,
)


class KafkaSetupError(RuntimeError):
    """Kafka refused us for a reason that retrying will not fix (TLS, login, rights)."""


def client_options(settings: Settings, bootstrap: str) -> dict[str, Any]:
    """Keyword arguments for ``AIOKafkaConsumer``, ``AIOKafkaProducer`` and the admin client."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap.split(","),
        "security_protocol": settings.kafka_security_protocol,
    }
    if uses_tls(settings):
        options["ssl_context"] = ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL_"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.sasl_password()
    return options


def uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A verifying client context: the given CA, else the system's trust store."""
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
            certfile=str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
            keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        )
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            "cannot load the Kafka TLS files (CSPULSE_KAFKA_SSL_CAFILE, _CERTFILE, _KEYFILE): "
            f"{_reason(exc)}"
        ) from None
    return context


def probe_tls(settings: Settings, bootstrap: str, timeout: float = 5.0) -> str | None:
    """Why a TLS handshake with the first reachable broker fails, or None if it succeeds.

    aiokafka reports a failed handshake only as "unable to bootstrap"; this
    repeats the handshake to tell a wrong CA from an unreachable broker.
    """
    context = ssl_context(settings)
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with (
                socket.create_connection((host, int(port)), timeout) as raw,
                context.wrap_socket(raw, server_hostname=host),
            ):
                return None
        except ssl.SSLCertVerificationError as exc:
            return (
                f"TLS certificate of Kafka at {server} not trusted ({exc.verify_message}). "
                "Set CSPULSE_KAFKA_SSL_CAFILE to the CA that signed the brokers' certificates."
            )
        except ssl.SSLError as exc:
            return (
                f"TLS handshake with Kafka at {server} failed ({_reason(exc)}). "
                "Check that this listener speaks TLS and CSPULSE_KAFKA_SECURITY_PROTOCOL."
            )
        except (OSError, ValueError):
            continue
    return None


class ClientErrors(logging.Handler):
    """What aiokafka logged while connecting: it logs a failed login, then swallows it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: list[BaseException] = []
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        if isinstance(record.args, tuple):
            self.errors.extend(a for a in record.args if isinstance(a, BaseException))


@contextlib.contextmanager
def capture_client_errors() -> Iterator[ClientErrors]:
    """Collect aiokafka's warnings instead of printing them (the caller reports them)."""
    logger = logging.getLogger("aiokafka")
    handler = ClientErrors()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def describe_failure(
    exc: BaseException, settings: Settings, bootstrap: str, logged: Sequence[BaseException] = ()
) -> str | None:
    """One line for a failure that retrying cannot fix, or None for "maybe not up yet"."""
    for error in [*_chain(exc), *logged]:
        if isinstance(error, AUTHORIZATION_ERRORS):
            return (
                f"Kafka at {bootstrap} denied an operation ({type(error).__name__}): the user "
                f"{settings.kafka_sasl_username or '(anonymous)'} lacks the ACLs cspulse needs "
                "(read, write, describe and create on its topics; read on its consumer group)."
            )
        if isinstance(error, AUTHENTICATION_ERRORS) or _raised_in_sasl_handshake(error):
            reason = (
                _reason(error)
                if isinstance(error, KafkaError)
                else "the broker ended the exchange without accepting it"
            )
            return (
                f"Kafka at {bootstrap} rejected the SASL login of user "
                f"{settings.kafka_sasl_username!r} with {settings.kafka_sasl_mechanism} "
                f"({reason}). Check CSPULSE_KAFKA_SASL_USERNAME, the password and "
                "CSPULSE_KAFKA_SASL_MECHANISM."
            )
    if uses_tls(settings):
        return probe_tls(settings, bootstrap)
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _raised_in_sasl_handshake(exc: BaseException) -> bool:
    """A server's SCRAM rejection that aiokafka cannot parse surfaces as a bare error
    from inside its SASL handshake; the traceback tells where it came from."""
    frames = traceback.extract_tb(exc.__traceback__)
    return any(frame.name == "_do_sasl_handshake" for frame in frames)


def _reason(exc: BaseException) -> str:
    """The first line of an error's message; its class name when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
