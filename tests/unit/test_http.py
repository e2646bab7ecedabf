"""The HTTP port through real sockets: exposition, methods, auth, TLS and slow clients.

Redis is a real redis-server; the server under test is cspulse's own, started
in-process on a free port.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import redis
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from aggregators.config import MetricConfig
from aggregators.windows import WindowSet
from streams.demo.embedded import Process, start_redis
from streams.exporter import HANDLER_THREADS, HttpServer, MetricsApp, Request, Response, serve
from streams.telemetry import version
from streams.webconfig import WebConfig
from tests.tls import Issued, issue, make_ca

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    process = start_redis(tmp_path_factory.mktemp("redis"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Issued:
    workdir = tmp_path_factory.mktemp("certs")
    return issue(workdir, "server", make_ca(workdir, "web"))


def _app(redis_server: Process) -> MetricsApp:
    client = redis.Redis(port=redis_server.port, socket_timeout=5)
    config = MetricConfig(windows=WindowSet.parse("1h:60"))
    return MetricsApp(client, config)


def _start(redis_server: Process, web: WebConfig | None = None, **limits: float) -> HttpServer:
    return serve(_app(redis_server), "127.0.0.1", 0, web, **limits)  # type: ignore[arg-type]


def _get(
    port: int,
    path: str,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    tls: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn: http.client.HTTPConnection = (
        http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=tls)
        if tls
        else http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    )
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _web_config(tmp_path: Path, body: str) -> WebConfig:
    path = tmp_path / "web.yml"
    path.write_text(body)
    return WebConfig.load(path)


def _users_yaml() -> str:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    return f"basic_auth_users:\n  prometheus: '{hashed}'\n"


def test_metrics_text_format_has_build_info_and_no_created(redis_server: Process) -> None:
    server = _start(redis_server)
    try:
        status, headers, body = _get(server.port, "/metrics")
    finally:
        server.shutdown()
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "server" not in headers
    samples = {s.name: s for f in text_string_to_metric_families(body.decode()) for s in f.samples}
    assert samples["cs_redis_up"].value == 1.0
    assert samples["cspulse_build_info"].labels["version"] == version()
    assert samples["cspulse_build_info"].value == 1.0
    assert not [name for name in samples if name.endswith("_created")]


def test_openmetrics_and_gzip_are_negotiated(redis_server: Process) -> None:
    server = _start(redis_server)
    try:
        accept = {"Accept": "application/openmetrics-text; version=1.0.0"}
        status, headers, body = _get(server.port, "/metrics", accept)
        zipped = _get(server.port, "/metrics", {"Accept-Encoding": "gzip"})
    finally:
        server.shutdown()
    assert status == 200 and headers["content-type"].startswith("application/openmetrics-text")
    text = body.decode()
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    names = {f.name for f in openmetrics_families(text)}
    assert {"cs_redis_up", "cspulse_build_info", "cs_events"} <= names
    assert zipped[1]["content-encoding"] == "gzip"
    plain = gzip.decompress(zipped[2]).decode()
    assert "cs_redis_up 1.0" in plain and "cspulse_build_info{" in plain


def test_only_get_and_head_are_served(redis_server: Process) -> None:
    server = _start(redis_server)
    try:
        post = _get(server.port, "/metrics", method="POST")
        head = _get(server.port, "/healthz", method="HEAD")
        missing = _get(server.port, "/nope")
    finally:
        server.shutdown()
    assert post[0] == 405 and post[1]["allow"] == "GET, HEAD"
    assert head[0] == 200 and head[2] == b"" and head[1]["content-length"] == "3"
    assert missing[0] == 404 and b"/metrics" in missing[2]
    assert all("server" not in r[1] for r in (post, head, missing))


def test_basic_auth_guards_everything_but_probes(redis_server: Process, tmp_path: Path) -> None:
    server = _start(redis_server, _web_config(tmp_path, _users_yaml()))
    server.app.add_route("/board", lambda _: Response(200, b"<h1>x</h1>", "text/html"))
    try:
        port = server.port
        good, wrong = _basic("prometheus", PASSWORD), _basic("prometheus", "guess")
        assert _get(port, "/metrics")[0] == 401
        assert _get(port, "/metrics", wrong)[0] == 401
        assert _get(port, "/metrics", _basic("nobody", PASSWORD))[0] == 401
        assert _get(port, "/accounts/at-risk")[0] == 401
        assert _get(port, "/board")[0] == 401
        assert _get(port, "/nope")[0] == 401
        assert 'Basic realm="cspulse"' in _get(port, "/metrics")[1]["www-authenticate"]
        assert _get(port, "/metrics", good)[0] == 200
        assert _get(port, "/accounts/at-risk", good)[:3:2] == (200, b"[]")
        assert _get(port, "/board", good)[2] == b"<h1>x</h1>"
        assert _get(port, "/healthz")[0] == 200 and _get(port, "/readyz")[0] == 200
    finally:
        server.shutdown()


def test_tls_with_basic_auth(redis_server: Process, certs: Issued, tmp_path: Path) -> None:
    body = (
        f"tls_server_config:\n  cert_file: {certs.cert}\n  key_file: {certs.key}\n" + _users_yaml()
    )
    server = _start(redis_server, _web_config(tmp_path, body))
    client = ssl.create_default_context(cafile=str(certs.ca))
    try:
        assert _get(server.port, "/metrics", tls=client)[0] == 401
        status, _, text = _get(server.port, "/metrics", _basic("prometheus", PASSWORD), tls=client)
        assert status == 200 and b"cs_redis_up 1.0" in text
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            _get(server.port, "/healthz")  # plain HTTP on a TLS port gets no answer
    finally:
        server.shutdown()


def test_half_sent_requests_do_not_exhaust_the_server(redis_server: Process) -> None:
    server = _start(redis_server, request_timeout=1.5)
    assert _get(server.port, "/healthz")[0] == 200  # the handler threads exist from here
    threads = threading.active_count()
    slow = []
    try:
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", server.port), 5)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
            slow.append(sock)
        started = time.monotonic()
        assert _get(server.port, "/metrics")[0] == 200
        assert time.monotonic() - started < 1.0  # served while the 50 still hang
        assert threading.active_count() <= threads + HANDLER_THREADS  # no thread per client
        time.sleep(2.0)
        for sock in slow:  # the server has hung up on each after its timeout
            sock.settimeout(2)
            assert sock.recv(100) == b""
    finally:
        for sock in slow:
            sock.close()
        server.shutdown()


def test_connections_beyond_the_limit_are_refused(redis_server: Process) -> None:
    server = _start(redis_server, max_connections=5, request_timeout=5)
    idle = [socket.create_connection(("127.0.0.1", server.port), 5) for _ in range(5)]
    try:
        time.sleep(0.2)
        assert _get(server.port, "/healthz")[0] == 503
        idle.pop().close()
        time.sleep(0.2)
        assert _get(server.port, "/healthz")[0] == 200
    finally:
        for sock in idle:
            sock.close()
        server.shutdown()


def test_web_config_errors_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a bcrypt hash"):
        _web_config(tmp_path, "basic_auth_users:\n  a: plaintext\n")
    with pytest.raises(ValueError, match="not a bcrypt hash"):
        _web_config(tmp_path, "basic_auth_users:\n  a: $2y$10$truncated\n")
    with pytest.raises(ValueError, match="unknown keys"):
        _web_config(tmp_path, "tls_config: {}\n")
    with pytest.raises(ValueError, match="needs cert_file and key_file"):
        _web_config(tmp_path, "tls_server_config:\n  cert_file: a.crt\n")
    with pytest.raises(ValueError, match="cannot read"):
        WebConfig.load(tmp_path / "missing.yml")


def test_request_fields_reach_handlers(redis_server: Process) -> None:
    seen: list[Request] = []

    def record(request: Request) -> Response:
        seen.append(request)
        return Response(200, b"{}", "application/json")

    server = _start(redis_server)
    server.app.add_route("/api/x", record)
    try:
        assert _get(server.port, "/api/x?a=1&a=2", {"X-Test": "yes"})[0] == 200
    finally:
        server.shutdown()
    assert seen[0].query == {"a": ["1", "2"]} and seen[0].headers["x-test"] == "yes"


def _raw(port: int, data: bytes) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), 5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_malformed_and_oversized_requests_get_an_error_and_a_close(
    redis_server: Process,
) -> None:
    server = _start(redis_server)
    try:
        assert _raw(server.port, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
        huge = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
        assert _raw(server.port, huge).startswith(b"HTTP/1.1 431 ")
        body = b"GET /metrics HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd"
        assert _raw(server.port, body).startswith(b"HTTP/1.1 400 ")
    finally:
        server.shutdown()


def test_keep_alive_serves_several_requests_and_http10_closes(redis_server: Process) -> None:
    server = _start(redis_server)
    try:
        two = b"GET /healthz HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"
        assert _raw(server.port, two).count(b"HTTP/1.1 200 OK") == 2
        reply = _raw(server.port, b"GET /healthz HTTP/1.0\r\n\r\n")  # closes without asking
        assert reply.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in reply
    finally:
        server.shutdown()


def test_metrics_can_be_restricted_by_name(redis_server: Process) -> None:
    server = _start(redis_server)
    try:
        status, _, body = _get(server.port, "/metrics?name[]=cs_redis_up")
    finally:
        server.shutdown()
    names = {s.name for f in text_string_to_metric_families(body.decode()) for s in f.samples}
    assert status == 200 and names == {"cs_redis_up"}
