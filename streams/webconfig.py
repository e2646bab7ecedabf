"""The web config of the HTTP port, in the Prometheus exporter-toolkit format.

The same YAML file that node_exporter and other exporters read
(``--web.config.file``), so scrape configs, Grafana and operators already
know it::

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      # client_ca_file: clients.crt
      # client_auth_type: RequireAndVerifyClientCert
      # min_version: TLS12
    basic_auth_users:
      prometheus: $2y$10$...   # bcrypt hash, e.g. htpasswd -nBC 10 "" | tr -d ':'

Relative file names are resolved against the config file's directory, as
exporter-toolkit does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml

TLS_KEYS = {
    "cert_file",
    "key_file",
    "client_ca_file",
    "client_auth_type",
    "min_version",
    "max_version",
    "cipher_suites",
    "curve_preferences",
    "prefer_server_cipher_suites",
}
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
"""Client certificates are always verified: exporter-toolkit's unverified modes
(RequestClientCert, RequireAnyClientCert) are refused."""
BCRYPT_HASH = re.compile(rb"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}


@dataclass
class WebConfig:
    """TLS context (None: plain HTTP) and basic-auth users (empty: no auth)."""

    tls: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)
    _verified: set[bytes] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, path: Path | str | None) -> WebConfig:
        """Read and check a web config file; no file means plain HTTP without auth."""
        if path is None or str(path) == "":
            return cls()
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ValueError(
                f"cannot read CSPULSE_WEB_CONFIG_FILE {path}: {exc.strerror}"
            ) from None
        except yaml.YAMLError as exc:
            raise ValueError(f"CSPULSE_WEB_CONFIG_FILE {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"CSPULSE_WEB_CONFIG_FILE {path}: expected a mapping at the top")
        unknown = set(data) - {"tls_server_config", "basic_auth_users", "http_server_config"}
        if unknown:
            raise ValueError(f"CSPULSE_WEB_CONFIG_FILE {path}: unknown keys {sorted(unknown)}")
        tls_section = data.get("tls_server_config")
        tls = _tls_context(tls_section, path.parent, path) if tls_section else None
        return cls(tls, _users(data.get("basic_auth_users") or {}, path))

    def authorized(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries a configured user's password."""
        if not self.users:
            return True
        user, password = _basic_credentials(header)
        if user is None or password is None:
            return False
        digest = hashlib.sha256(f"{user}\0{password}".encode()).digest()
        with self._lock:
            if digest in self._verified:
                return True
        # an unknown user is checked against a real hash too (same cost), so the reply's
        # timing does not tell which user names exist
        hashed = self.users.get(user) or next(iter(self.users.values()))
        ok = bcrypt.checkpw(password.encode(), hashed) and user in self.users
        if ok:  # bcrypt costs ~0.1 s on purpose; a scrape every 15 s should not pay it
            with self._lock:
                self._verified.add(digest)
        return ok


def _basic_credentials(header: str | None) -> tuple[str | None, str | None]:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else (None, None)


def _users(section: Any, path: Path) -> dict[str, bytes]:
    if not isinstance(section, dict):
        raise ValueError(f"{path}: basic_auth_users must map user names to bcrypt hashes")
    users: dict[str, bytes] = {}
    for name, hashed in section.items():
        value = str(hashed).encode()
        if not BCRYPT_HASH.fullmatch(value):
            raise ValueError(
                f"{path}: basic_auth_users.{name} is not a bcrypt hash; create one with "
                "htpasswd -nBC 10 '' | tr -d ':'"
            )
        users[str(name)] = value
    return users


def _tls_context(section: Any, base: Path, path: Path) -> ssl.SSLContext:
    if not isinstance(section, dict):
        raise ValueError(f"{path}: tls_server_config must be a mapping")
    unknown = set(section) - TLS_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown tls_server_config keys {sorted(unknown)}")
    if not section.get("cert_file") or not section.get("key_file"):
        raise ValueError(f"{path}: tls_server_config needs cert_file and key_file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _tls_version(section.get("min_version", "TLS12"), path)
    if section.get("max_version"):
        context.maximum_version = _tls_version(section["max_version"], path)
    try:
        context.load_cert_chain(base / section["cert_file"], base / section["key_file"])
        auth_type = section.get("client_auth_type", "NoClientCert")
        if auth_type not in CLIENT_AUTH:
            raise ValueError(f"{path}: client_auth_type must be one of {sorted(CLIENT_AUTH)}")
        context.verify_mode = CLIENT_AUTH[auth_type]
        if section.get("client_ca_file"):
            context.load_verify_locations(base / section["client_ca_file"])
        elif "Verify" in auth_type:
            raise ValueError(f"{path}: client_auth_type {auth_type} needs client_ca_file")
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"{path}: cannot load the TLS files: {exc}") from None
    return context


def _tls_version(name: Any, path: Path) -> ssl.TLSVersion:
    if name not in TLS_VERSIONS:
        raise ValueError(f"{path}: TLS version {name!r} not supported; use TLS12 or TLS13")
    return TLS_VERSIONS[name]
