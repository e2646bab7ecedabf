"""Kafka security settings reach every aiokafka client, and failures are told apart."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)

from streams.config import Settings
from streams.kafka_options import client_options, describe_failure
from tests.tls import make_ca


def _clients(settings: Settings) -> list[object]:
    """The aiokafka client inside each of the consumer, the producer and the admin client."""

    async def build() -> list[object]:
        options = client_options(settings, "b1:9093,b2:9093")
        consumer = AIOKafkaConsumer(**options)
        producer = AIOKafkaProducer(**options)
        admin = AIOKafkaAdminClient(**options)
        inner = [consumer._client, producer.client, admin._client]
        await producer.stop()
        return inner

    return asyncio.run(build())


def test_sasl_over_tls_reaches_consumer_producer_and_admin(tmp_path: Path) -> None:
    ca, _ = make_ca(tmp_path, "kafka")
    password_file = tmp_path / "password"
    password_file.write_text("from-file\n")
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc-cspulse",
        kafka_sasl_password_file=password_file,
        kafka_ssl_cafile=ca,
    )
    for client in _clients(settings):
        assert client._bootstrap_servers == ["b1:9093", "b2:9093"]  # type: ignore[attr-defined]
        assert client._security_protocol == "SASL_SSL"  # type: ignore[attr-defined]
        assert client._sasl_mechanism == "SCRAM-SHA-512"  # type: ignore[attr-defined]
        assert client._sasl_plain_username == "svc-cspulse"  # type: ignore[attr-defined]
        assert client._sasl_plain_password == "from-file"  # type: ignore[attr-defined]
        context = client._ssl_context  # type: ignore[attr-defined]
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        subjects = [dict(x[0] for x in c["subject"]) for c in context.get_ca_certs()]
        assert {"commonName": "kafka test CA"} in subjects


def test_plaintext_is_the_default_and_carries_no_credentials() -> None:
    options = client_options(Settings(), "localhost:9092")
    assert options == {"bootstrap_servers": ["localhost:9092"], "security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "needs CSPULSE_KAFKA_SASL_USERNAME"),
        (
            {"kafka_sasl_password": "a", "kafka_sasl_password_file": "/x"},
            "not both",
        ),
        ({"kafka_ssl_keyfile": "/k.pem"}, "needs CSPULSE_KAFKA_SSL_CERTFILE"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "PLAIN"),
    ],
)
def test_incomplete_security_settings_are_refused(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(**overrides)  # type: ignore[arg-type]


def test_a_missing_ca_file_is_reported_by_name(tmp_path: Path) -> None:
    settings = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "no.pem")
    with pytest.raises(ValueError, match="CSPULSE_KAFKA_SSL_CAFILE"):
        client_options(settings, "b:9093")


def test_failures_are_told_apart() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="svc",
        kafka_sasl_password="pw-pw-pw",
    )
    denied = describe_failure(TopicAuthorizationFailedError(), settings, "b:9092")
    assert denied and "denied" in denied and "ACLs" in denied and "svc" in denied
    # aiokafka logs the failed login and raises a generic connection error
    unreachable = KafkaConnectionError("Unable to bootstrap from [b:9092]")
    login = describe_failure(unreachable, settings, "b:9092", [SaslAuthenticationFailed()])
    assert login and "rejected the SASL login of user 'svc' with PLAIN" in login
    assert describe_failure(unreachable, settings, "b:9092") is None  # retry: may start later


def test_topic_creation_errors_are_sorted_by_what_helps() -> None:
    from types import SimpleNamespace

    from aiokafka.errors import RequestTimedOutError

    from streams.kafka_options import KafkaSetupError
    from streams.topics import _raise_topic_errors

    def response(*errors: tuple[str, int, str | None]) -> SimpleNamespace:
        return SimpleNamespace(topic_errors=list(errors))

    _raise_topic_errors(response(("a", 0, None), ("b", 36, None)))  # created, or already there
    with pytest.raises(KafkaSetupError, match="refused to create topic c: factor 3 > 1"):
        _raise_topic_errors(response(("c", 38, "factor 3 > 1")))  # permanent: stop at once
    with pytest.raises(TopicAuthorizationFailedError):
        _raise_topic_errors(response(("d", 29, None)))  # reported as missing ACLs
    with pytest.raises(RequestTimedOutError):
        _raise_topic_errors(response(("e", 7, None)))  # retried
