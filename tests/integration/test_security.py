"""Managed-service security through real processes: Kafka over TLS, SASL, secrets, web config.

Kafka TLS runs through Debian's stunnel4 in front of a dedicated Tansu broker
that advertises the stunnel port, so every connection the clients make (the
bootstrap one and the ones to the advertised broker) is TLS, checked against a
CA made in the test; Redis TLS (``rediss://``) runs through stunnel too. Tansu
checks SASL SCRAM logins when started with ``--authentication``; its in-memory
store gives no way to create a user on such a broker, so only the rejected
login can be tested against it (a successful SASL login is covered by the unit
test that the settings reach aiokafka).
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import redis
from aiokafka import AIOKafkaConsumer

from streams.config import Settings
from streams.demo.embedded import broker_binary, free_port, redis_server_binary, wait_for_port
from streams.kafka_options import client_options
from tests.harness import Stack, scrape
from tests.integration.conftest import fresh_names
from tests.tls import Issued, issue, make_ca

REDIS_PASSWORD = "redis-pw-Quartz-5531"
ACL_PASSWORD = "acl-pw-Falcon-7723"
SASL_PASSWORD = "sasl-pw-Maple-9148"
FILE_PASSWORD = "file-pw-Cobalt-2287"
WRONG_PASSWORD = "wrong-pw-Ember-6604"
WEB_PASSWORD = "web-pw-Orchid-3390"
SECRETS = (REDIS_PASSWORD, ACL_PASSWORD, SASL_PASSWORD, FILE_PASSWORD, WRONG_PASSWORD)


@dataclass
class Child:
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _start(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Child:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    return Child(proc, log)


def _cspulse(*args: str, env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Run a cspulse command to its end; (exit code, stdout and stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return result.returncode, result.stdout + result.stderr


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSPULSE_")}
    env.update(CSPULSE_LOG_LEVEL="info", CSPULSE_PARTITIONS="2", **values)
    return env


def _assert_no_secret(output: str) -> None:
    leaked = [s for s in SECRETS if s in output]
    assert not leaked, f"secrets in output: {leaked}\n{output[-3000:]}"


# --- services -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("security")


@pytest.fixture(scope="module")
def certs(workdir: Path) -> tuple[Issued, Path]:
    """A server certificate from one CA, and another CA that did not sign it."""
    good = issue(workdir, "server", make_ca(workdir, "good"))
    other, _ = make_ca(workdir, "other")
    return good, other


@pytest.fixture(scope="module")
def tls_kafka(workdir: Path, certs: tuple[Issued, Path]) -> Iterator[tuple[str, str]]:
    """(TLS bootstrap through stunnel, the broker's plain port): Tansu advertises the TLS one."""
    stunnel = shutil.which("stunnel4") or shutil.which("stunnel")
    if stunnel is None:
        pytest.skip("stunnel4 not installed (Debian: apt-get install stunnel4)")
    issued, _ = certs
    plain, secure = free_port(), free_port()
    broker = _start(
        [
            broker_binary(), "broker",
            "--listener-url", f"tcp://127.0.0.1:{plain}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{secure}",
            "--storage-engine", "memory://tansu/",
        ],
        workdir / "tls-broker.log",
    )  # fmt: skip
    conf = workdir / "stunnel.conf"
    conf.write_text(
        "foreground = yes\npid =\n[kafka]\n"
        f"accept = 127.0.0.1:{secure}\nconnect = 127.0.0.1:{plain}\n"
        f"cert = {issued.cert}\nkey = {issued.key}\n"
    )
    tunnel = _start([stunnel, str(conf)], workdir / "stunnel.log")
    try:
        wait_for_port(plain, broker.proc, "tansu")
        wait_for_port(secure, tunnel.proc, "stunnel")
        yield f"127.0.0.1:{secure}", f"127.0.0.1:{plain}"
    finally:
        tunnel.stop()
        broker.stop()


@pytest.fixture(scope="module")
def sasl_kafka(workdir: Path) -> Iterator[str]:
    """A Tansu broker that requires a SASL login."""
    port = free_port()
    broker = _start(
        [
            broker_binary(), "broker", "--authentication",
            "--listener-url", f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{port}",
            "--storage-engine", "memory://tansu/",
        ],
        workdir / "sasl-broker.log",
    )  # fmt: skip
    try:
        wait_for_port(port, broker.proc, "tansu")
        yield f"127.0.0.1:{port}"
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def secured_redis(workdir: Path) -> Iterator[int]:
    """A redis-server with a default password and an ACL user ``cspulse``."""
    port = free_port()
    server = _start(
        [
            redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--requirepass", REDIS_PASSWORD,
        ],
        workdir / "redis.log",
    )  # fmt: skip
    try:
        wait_for_port(port, server.proc, "redis")
        client = redis.Redis(port=port, password=REDIS_PASSWORD)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.exceptions.BusyLoadingError:
                time.sleep(0.05)
        client.acl_setuser(
            "cspulse",
            enabled=True,
            passwords=[f"+{ACL_PASSWORD}"],
            keys=["*"],
            channels=["*"],
            commands=["+@all"],
        )
        yield port
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tls_redis(secured_redis: int, certs: tuple[Issued, Path], workdir: Path) -> Iterator[int]:
    """The secured Redis behind a TLS port (stunnel), as managed Redis services serve it."""
    stunnel = shutil.which("stunnel4") or shutil.which("stunnel")
    if stunnel is None:
        pytest.skip("stunnel4 not installed (Debian: apt-get install stunnel4)")
    issued, _ = certs
    port = free_port()
    conf = workdir / "stunnel-redis.conf"
    conf.write_text(
        "foreground = yes\npid =\n[redis]\n"
        f"accept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{secured_redis}\n"
        f"cert = {issued.cert}\nkey = {issued.key}\n"
    )
    tunnel = _start([stunnel, str(conf)], workdir / "stunnel-redis.log")
    try:
        wait_for_port(port, tunnel.proc, "stunnel")
        yield port
    finally:
        tunnel.stop()


# --- Kafka over TLS ------------------------------------------------------------------------


def test_topics_generator_and_worker_work_over_tls(
    tls_kafka: tuple[str, str], certs: tuple[Issued, Path], stack: Stack, workdir: Path
) -> None:
    secure, _ = tls_kafka
    issued, _ = certs
    env = _env(
        CSPULSE_KAFKA_BOOTSTRAP=secure,
        CSPULSE_KAFKA_SECURITY_PROTOCOL="SSL",
        CSPULSE_KAFKA_SSL_CAFILE=str(issued.ca),
        CSPULSE_TOPIC_PREFIX="tls.",
        CSPULSE_KAFKA_SASL_PASSWORD=SASL_PASSWORD,  # given, unused without SASL
    )
    code, out = _cspulse("topics", "create", "--partitions", "2", env=env)
    assert code == 0, out
    assert "topics ready: tls.tickets" in out
    code, out = _cspulse("generate", "--duration", "2", "--accounts", "5", "--rate", "20", env=env)
    assert code == 0, out
    _assert_no_secret(out)
    settings = Settings(
        kafka_security_protocol="SSL", kafka_ssl_cafile=issued.ca, topic_prefix="tls."
    )
    records = asyncio.run(_read_some(settings, secure, "tls.logins"))
    assert records and all(r.topic == "tls.logins" and r.value for r in records)
    # the worker consumes them over TLS too (its consumer, producer and admin client)
    stack.redis().flushall()
    port = free_port()
    worker_env = {**env, "CSPULSE_REDIS_URL": stack.redis_url, "CSPULSE_METRICS_PORT": str(port)}
    child = _start([sys.executable, "-m", "streams", "worker"], workdir / "w-tls.log", worker_env)
    try:
        _wait_http(child, port, None)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _events_applied(port) == 0:
            time.sleep(0.5)
        assert _events_applied(port) > 0, child.output()[-3000:]
    finally:
        child.stop()
    _assert_no_secret(child.output())


def _events_applied(port: int) -> float:
    return sum(v for (name, _), v in scrape(port).items() if name == "cs_events_total")


async def _read_some(settings: Settings, bootstrap: str, topic: str) -> list[Any]:
    """Read what a topic holds, over the same TLS settings as cspulse's clients."""
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(settings, bootstrap),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000, max_records=50)
        return [record for records in batch.values() for record in records]
    finally:
        await consumer.stop()


def test_an_untrusted_broker_certificate_fails_in_one_clear_line(
    tls_kafka: tuple[str, str], certs: tuple[Issued, Path]
) -> None:
    secure, _ = tls_kafka
    _, other_ca = certs
    env = _env(
        CSPULSE_KAFKA_BOOTSTRAP=secure,
        CSPULSE_KAFKA_SECURITY_PROTOCOL="SSL",
        CSPULSE_KAFKA_SSL_CAFILE=str(other_ca),
    )
    started = time.monotonic()
    code, out = _cspulse("topics", "create", env=env)
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 2
    assert len(lines) == 1, out
    assert f"TLS certificate of Kafka at {secure} not trusted" in lines[0]
    assert "CSPULSE_KAFKA_SSL_CAFILE" in lines[0]
    assert time.monotonic() - started < 20  # not retried until the 30 s timeout


def test_plaintext_client_on_a_tls_listener_is_not_mistaken_for_success(
    tls_kafka: tuple[str, str],
) -> None:
    secure, _ = tls_kafka
    env = _env(CSPULSE_KAFKA_BOOTSTRAP=secure)
    code, out = _cspulse("topics", "create", "--partitions", "2", env=env, timeout=120)
    assert code == 2
    assert "CSPULSE_KAFKA_SECURITY_PROTOCOL" in out.splitlines()[-1]


# --- SASL -----------------------------------------------------------------------------------


def test_a_rejected_sasl_login_is_reported_as_such_and_hides_the_password(
    sasl_kafka: str, workdir: Path, stack: Stack
) -> None:
    password_file = workdir / "sasl-password"
    password_file.write_text(FILE_PASSWORD + "\n")
    for mechanism, secret in (
        ("SCRAM-SHA-512", {"CSPULSE_KAFKA_SASL_PASSWORD": SASL_PASSWORD}),
        ("SCRAM-SHA-256", {"CSPULSE_KAFKA_SASL_PASSWORD_FILE": str(password_file)}),
    ):
        env = _env(
            CSPULSE_KAFKA_BOOTSTRAP=sasl_kafka,
            CSPULSE_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
            CSPULSE_KAFKA_SASL_MECHANISM=mechanism,
            CSPULSE_KAFKA_SASL_USERNAME="nobody",
            CSPULSE_REDIS_URL=stack.redis_url,
            CSPULSE_METRICS_PORT=str(free_port()),
            **secret,
        )
        for command in (["topics", "create"], ["generate", "--duration", "1"], ["worker"]):
            code, out = _cspulse(*command, env=env)
            assert code == 2, out
            last = out.strip().splitlines()[-1]
            assert f"Kafka at {sasl_kafka} rejected the SASL login of user 'nobody'" in last
            assert f"with {mechanism} (the broker ended the exchange without accepting it)" in last
            assert "cannot reach" not in out
            _assert_no_secret(out)


# --- secrets never in output ------------------------------------------------------------------


def _listening_address(port: int) -> str:
    """The local address a TCP port listens on, from /proc/net/tcp (IPv4)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, hex_port = fields[1].split(":")
        if int(hex_port, 16) == port and fields[3] == "0A":  # LISTEN
            octets = [str(int(address[i : i + 2], 16)) for i in range(6, -1, -2)]
            return ".".join(octets)
    raise AssertionError(f"nothing listens on port {port}")


def _request(
    port: int, path: str, auth: str | None = None, tls: ssl.SSLContext | None = None
) -> int:
    return _fetch(port, path, auth, tls)[0]


def _fetch(
    port: int, path: str, auth: str | None = None, tls: ssl.SSLContext | None = None
) -> tuple[int, bytes]:
    conn: http.client.HTTPConnection = (
        http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=tls)
        if tls
        else http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    )
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _wait_http(child: Child, port: int, tls: ssl.SSLContext | None, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise AssertionError(f"exited {child.proc.returncode}:\n{child.output()[-3000:]}")
        try:
            if _request(port, "/healthz", tls=tls) == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"/healthz not served in {timeout}s:\n{child.output()[-3000:]}")


def _web_config(workdir: Path, tls: Issued | None) -> Path:
    hashed = bcrypt.hashpw(WEB_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    text = f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    if tls:
        text += f"tls_server_config:\n  cert_file: {tls.cert}\n  key_file: {tls.key}\n"
    path = workdir / ("web-tls.yml" if tls else "web.yml")
    path.write_text(text)
    return path


def _check_web_auth(port: int, tls: ssl.SSLContext | None) -> None:
    for path in ("/metrics", "/accounts/at-risk"):
        assert _request(port, path, tls=tls) == 401
        assert _request(port, path, "prometheus:nope", tls=tls) == 401
        assert _request(port, path, f"prometheus:{WEB_PASSWORD}", tls=tls) == 200


@pytest.mark.parametrize("form", ["url-acl-user", "url-default-user", "variable", "rediss"])
def test_worker_hides_redis_passwords_and_serves_behind_the_web_config(
    form: str,
    request: pytest.FixtureRequest,
    stack: Stack,
    secured_redis: int,
    certs: tuple[Issued, Path],
    workdir: Path,
) -> None:
    prefix, group = fresh_names(stack)
    issued, _ = certs
    tls = form == "url-acl-user"
    urls = {
        "url-acl-user": f"redis://cspulse:{ACL_PASSWORD}@127.0.0.1:{secured_redis}/0",
        "url-default-user": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{secured_redis}/0",
        "variable": f"redis://127.0.0.1:{secured_redis}/0",
    }
    if form == "rediss":
        tls_port = request.getfixturevalue("tls_redis")
        urls[form] = f"rediss://cspulse@127.0.0.1:{tls_port}/0?ssl_ca_certs={issued.ca}"
    port = free_port()
    env = _env(
        CSPULSE_KAFKA_BOOTSTRAP=stack.bootstrap,
        CSPULSE_REDIS_URL=urls[form],
        CSPULSE_METRICS_PORT=str(port),
        CSPULSE_TOPIC_PREFIX=prefix,
        CSPULSE_APP_ID=group,
        CSPULSE_WEB_CONFIG_FILE=str(_web_config(workdir, issued if tls else None)),
        CSPULSE_KAFKA_SASL_PASSWORD=SASL_PASSWORD,  # given, unused with PLAINTEXT
    )
    if form == "variable":
        env["CSPULSE_REDIS_PASSWORD"] = REDIS_PASSWORD
    if form == "rediss":  # an ACL user in the URL, its password apart
        env["CSPULSE_REDIS_PASSWORD"] = ACL_PASSWORD
    child = _start([sys.executable, "-m", "streams", "worker"], workdir / f"w-{form}.log", env)
    client_tls = ssl.create_default_context(cafile=str(issued.ca)) if tls else None
    try:
        _wait_http(child, port, client_tls)
        _check_web_auth(port, client_tls)
        status, body = _fetch(port, "/metrics", f"prometheus:{WEB_PASSWORD}", client_tls)
        assert status == 200 and b"\ncs_redis_up 1.0\n" in body  # logged in to Redis
        assert _listening_address(port) == "0.0.0.0"
    finally:
        child.stop()
    _assert_no_secret(child.output())


def test_worker_and_run_fail_clearly_on_a_wrong_redis_password(
    stack: Stack, secured_redis: int
) -> None:
    url = f"redis://cspulse:{WRONG_PASSWORD}@127.0.0.1:{secured_redis}/0"
    for command in ("worker", "run"):
        env = _env(
            CSPULSE_KAFKA_BOOTSTRAP=stack.bootstrap,
            CSPULSE_REDIS_URL=url,
            CSPULSE_METRICS_PORT=str(free_port()),
        )
        code, out = (
            _cspulse(command, "--connect-timeout", "5", env=env)
            if command == "worker"
            else _cspulse(command, env=env)
        )
        assert code == 2, out
        last = out.strip().splitlines()[-1]
        assert "refused the login" in last and "redis://cspulse:***@127.0.0.1" in last
        _assert_no_secret(out)


def test_run_binds_loopback_and_hides_the_password(secured_redis: int, workdir: Path) -> None:
    port = free_port()
    env = _env(
        CSPULSE_REDIS_URL=f"redis://:{REDIS_PASSWORD}@127.0.0.1:{secured_redis}/0",
        CSPULSE_METRICS_PORT=str(port),
        CSPULSE_INGEST_PORT=str(free_port()),
        CSPULSE_KAFKA_SASL_PASSWORD=SASL_PASSWORD,
    )
    child = _start(
        [sys.executable, "-m", "streams", "run", "--accounts", "5"], workdir / "run.log", env
    )
    try:
        _wait_http(child, port, None)
        assert _request(port, "/metrics") == 200
        assert _listening_address(port) == "127.0.0.1"
    finally:
        child.stop()
    output = child.output()
    assert "cspulse is running" in output and f":***@127.0.0.1:{secured_redis}" in output
    _assert_no_secret(output)


# --- topics create --------------------------------------------------------------------------


async def _replicas(bootstrap: str, topic: str) -> list[int]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return [len(p["replicas"]) for p in described["partitions"]]
    finally:
        await admin.close()


def test_replication_factor_defaults_to_the_broker_count_below_three(stack: Stack) -> None:
    """One broker: the default of 3 copies is capped at 1; an explicit value is used as given."""
    for prefix, flags, copies in (
        ("rf-default.", [], 1),
        ("rf-two.", ["--replication-factor", "2"], 2),
    ):
        env = _env(CSPULSE_KAFKA_BOOTSTRAP=stack.bootstrap, CSPULSE_TOPIC_PREFIX=prefix)
        code, out = _cspulse("topics", "create", "--partitions", "2", *flags, env=env)
        assert code == 0, out
        assert asyncio.run(_replicas(stack.bootstrap, f"{prefix}billing")) == [copies, copies]
