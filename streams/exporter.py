"""The HTTP side: ``/metrics``, ``/healthz``, ``/readyz``, ``/accounts/at-risk`` and more.

Served by a small asyncio HTTP/1.1 server on its own thread, never on the
event loop that processes events, so a slow scrape cannot stall
consumption. Connections cost no thread while they wait: a client has
``request_timeout`` seconds to send its request line and headers, at most
``max_connections`` are open at once, and the handlers run on a pool of a
few threads. TLS and basic auth follow the Prometheus exporter-toolkit web
config (:mod:`streams.webconfig`); ``/healthz`` and ``/readyz`` stay open so
probes need no credentials.

The business gauges come from Redis at scrape time (the collectors of
:mod:`streams.collectors`), so every replica serves the same numbers;
``/metrics`` uses prometheus_client's own encoders: text or OpenMetrics by
``Accept``, gzip by ``Accept-Encoding``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import logging
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted
from redis import Redis

from aggregators.clock import WALL, Clock
from aggregators.config import MetricConfig
from aggregators.health import HealthConfig
from aggregators.reader import Reader
from streams import telemetry
from streams.board import Board
from streams.collectors import Combined, NamedOnly, RedisCollector
from streams.webconfig import WebConfig

log = logging.getLogger("cspulse.exporter")
ACCOUNT_PREFIX = "/accounts/"


@dataclass(frozen=True)
class Request:
    """What a handler sees of an HTTP request (header names lower-cased)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    protocol: str = "HTTP/1.1"
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    handler: Handler
    public: bool = False
    """Public routes answer without credentials even when basic auth is configured."""
    methods: tuple[str, ...] = ("GET", "HEAD")


class Routes(Protocol):
    """What the HTTP server serves: a :class:`MetricsApp`, or the ingest's app."""

    routes: dict[str, Route]
    """Path -> route, for the 404 answer's list."""

    def route(self, path: str) -> Route | None:
        """The route serving ``path`` (None: not found)."""


class MetricsApp:
    """The routes behind the metrics port. Add pages with :meth:`add_route`."""

    def __init__(
        self,
        redis: Redis,
        config: MetricConfig,
        clock: Clock = WALL,
        ready: Callable[[], bool] = lambda: True,
        health: HealthConfig | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        health_config = health or HealthConfig.load()
        reader = Reader(redis, config, clock)
        self.collector = RedisCollector(reader, config, health_config)
        self.reader, self.health_config = reader, health_config
        self.registry.register(self.collector)
        self.exposed = CollectorRegistry(auto_describe=False)
        self.exposed.register(Combined(self.registry, telemetry.REGISTRY))
        self.board = Board(reader, config, health_config, telemetry.REGISTRY)
        self.ready = ready
        self.routes: dict[str, Route] = {
            "/metrics": Route(self.metrics),
            "/healthz": Route(lambda _: Response(200, b"ok\n"), public=True),
            "/readyz": Route(self.readiness, public=True),
            "/accounts/at-risk": Route(self.at_risk),
            "/": Route(self.board_page),
            "/api/series": Route(self.board_series),
        }

    def add_route(self, path: str, handler: Handler, *, public: bool = False) -> None:
        """Serve ``handler`` at ``path`` (GET and HEAD), behind the web config's auth."""
        self.routes[path] = Route(handler, public)

    def metrics(self, request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        names = request.query.get("name[]")
        body = encoder(NamedOnly(self.exposed, set(names)) if names else self.exposed)
        if gzip_accepted(request.headers.get("accept-encoding", "")):
            return Response(
                200, gzip.compress(body, 6), content_type, (("Content-Encoding", "gzip"),)
            )
        return Response(200, body, content_type)

    def board_page(self, request: Request) -> Response:
        return _page(*self.board.page(request.query))

    def board_series(self, request: Request) -> Response:
        status, body = self.board.series(request.query)
        return _json(status, body)

    def readiness(self, _: Request) -> Response:
        if self.ready():
            return Response(200, b"ready\n")
        return Response(503, b"not ready\n")

    def at_risk(self, request: Request) -> Response:
        status, body = self.board.at_risk(request.query)
        return _json(status, body)

    def account_page(self, request: Request) -> Response:
        account = unquote(request.path.removeprefix(ACCOUNT_PREFIX))
        return _page(*self.board.account(account, request.query))

    def route(self, path: str) -> Route | None:
        """The route of ``path``: exact, else ``/accounts/<id>``."""
        found = self.routes.get(path)
        if found is None and path.startswith(ACCOUNT_PREFIX) and len(path) > len(ACCOUNT_PREFIX):
            return Route(self.account_page)
        return found


def _page(status: int, body: str) -> Response:
    """A page, or its error as plain text: an error echoes the request, never as HTML."""
    kind = "text/html" if status == 200 else "text/plain"
    return Response(status, body.encode(), f"{kind}; charset=utf-8")


def _json(status: int, value: Any) -> Response:
    return Response(status, orjson.dumps(value), "application/json")


class HttpError(Exception):
    """A request that gets an error status without reaching a handler."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


MAX_HEADER_BYTES = 16 * 1024
HANDLER_THREADS = 4
SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"))


@dataclass
class HttpServer:
    """An HTTP/1.1 server (GET, HEAD; POST up to ``max_body``) on a thread with its own loop."""

    app: Routes
    sock: socket.socket
    web: WebConfig
    max_connections: int = 128
    request_timeout: float = 10.0
    max_body: int = 0
    connections: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(HANDLER_THREADS, "cspulse-http")
    )

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def start(self) -> HttpServer:
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="cspulse-metrics", daemon=True
        )
        self._thread.start()
        ready.wait(10)
        return self

    def shutdown(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.sock.close()

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(
            asyncio.start_server(
                self._connection,
                sock=self.sock,
                ssl=self.web.tls,
                ssl_handshake_timeout=self.request_timeout if self.web.tls else None,
                limit=MAX_HEADER_BYTES,
            )
        )
        ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.connections > self.max_connections:
                await self._send(writer, Response(503, b"too many connections\n"), "GET", True)
                return
            keep_alive = True
            while keep_alive:
                keep_alive = await self._exchange(reader, writer)
        except (OSError, asyncio.IncompleteReadError):  # resets, timeouts, TLS errors
            pass
        except asyncio.CancelledError:  # server shutdown: end quietly
            pass
        finally:
            self.connections -= 1
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read one request within the timeout and answer it; True to keep the connection."""
        try:
            request = await self._read_request(reader, writer)
        except HttpError as exc:
            await self._send(writer, Response(exc.status, f"{exc.message}\n".encode()), "GET")
            return False
        if request is None:
            return False
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(self._pool, self._respond, request)
        close = _wants_close(request)
        await self._send(writer, response, request.method, close)
        return not close

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Request | None:
        """The next request, or None when the client closed the connection between requests."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.request_timeout)
        except asyncio.LimitOverrunError:
            raise HttpError(431, "request headers too large") from None
        except asyncio.IncompleteReadError:
            return None
        request = _parse(head, self.max_body)
        length = int(request.headers.get("content-length", "0"))
        if request.method != "POST" or not length:
            return request
        if request.headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await asyncio.wait_for(reader.readexactly(length), self.request_timeout)
        return dataclasses.replace(request, body=body)

    def _respond(self, request: Request) -> Response:
        route = self.app.route(request.path)
        if not (route and route.public) and not self.web.authorized(
            request.headers.get("authorization")
        ):
            return Response(
                401,
                b"authentication required\n",
                headers=(("WWW-Authenticate", 'Basic realm="cspulse", charset="UTF-8"'),),
            )
        if route is None:
            known = ", ".join(sorted(self.app.routes))
            return Response(404, f"not found; paths served: {known}\n".encode())
        if request.method not in route.methods:
            allow = ", ".join(route.methods)
            return Response(405, f"use {allow}\n".encode(), headers=(("Allow", allow),))
        try:
            response: Response = route.handler(request)
            return response
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return Response(500, b"internal error; see the cspulse log\n")

    async def _send(
        self, writer: asyncio.StreamWriter, response: Response, method: str, close: bool = True
    ) -> None:
        reason = HTTPStatus(response.status).phrase
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            *SECURITY_HEADERS,
            *response.headers,
        ]
        if close:
            headers.append(("Connection", "close"))
        if response.status == 405 and not any(k == "Allow" for k, _ in response.headers):
            headers.append(("Allow", "GET, HEAD"))
        lines = [f"HTTP/1.1 {response.status} {reason}", *(f"{k}: {v}" for k, v in headers)]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # one write: a separate body segment would wait for the client's delayed ACK (~40 ms)
        writer.write(head if method == "HEAD" else head + response.body)
        await asyncio.wait_for(writer.drain(), self.request_timeout)


def _parse(head: bytes, max_body: int = 0) -> Request:
    """Request line and headers: GET and HEAD without a body, POST when ``max_body``."""
    try:
        text = head.decode("latin-1")
        request_line, *header_lines = text.split("\r\n")
        method, target, protocol = request_line.split(" ")
    except ValueError:
        raise HttpError(400, "malformed request line") from None
    if not protocol.startswith("HTTP/1."):
        raise HttpError(505, "HTTP/1.x only")
    headers: dict[str, str] = {}
    for line in header_lines:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, "malformed header line")
        headers[name.lower()] = value.strip()
    if method == "POST" and max_body:
        _check_body(headers, max_body)
    elif method not in ("GET", "HEAD"):
        raise HttpError(405, f"method {method} not allowed; use GET or HEAD")
    elif headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
        raise HttpError(400, "GET and HEAD requests take no body")
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)  # "?hours=" is refused, not ignored
    return Request(method, url.path or "/", query, headers, protocol)


def _check_body(headers: dict[str, str], max_body: int) -> None:
    """A POST body must announce its length, within the bound, before it is read."""
    length = headers.get("content-length")
    if length is None or "transfer-encoding" in headers:
        raise HttpError(411, "a POST needs a Content-Length (chunked bodies are not accepted)")
    if not length.isdigit():
        raise HttpError(400, "malformed Content-Length")
    if int(length) > max_body:
        raise HttpError(413, f"body of {length} bytes is over the limit of {max_body}")


def _wants_close(request: Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.protocol == "HTTP/1.0":
        return connection != "keep-alive"
    return connection == "close"


def serve(
    app: Routes,
    host: str,
    port: int,
    web: WebConfig | None = None,
    *,
    max_connections: int = 128,
    request_timeout: float = 10.0,
    max_body: int = 0,
) -> HttpServer:
    """Bind ``host:port`` (raising OSError here if that fails) and serve on a daemon thread."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=128)
    server = HttpServer(app, sock, web or WebConfig(), max_connections, request_timeout, max_body)
    return server.start()
