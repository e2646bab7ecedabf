"""Throwaway certificate authorities for tests, made with the openssl command line."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Issued:
    ca: Path
    cert: Path
    key: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(
        ["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True, timeout=60
    )


def make_ca(workdir: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cert, key = workdir / f"{name}-ca.crt", workdir / f"{name}-ca.key"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN={name} test CA", "-keyout", key, "-out", cert,
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=workdir,
    )  # fmt: skip
    return cert, key


def issue(workdir: Path, name: str, ca: tuple[Path, Path]) -> Issued:
    """A server certificate for localhost and 127.0.0.1, signed by ``ca``."""
    ca_cert, ca_key = ca
    key, csr, cert = (workdir / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
    ext = workdir / f"{name}.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", key, "-out", csr, cwd=workdir,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "2", "-extfile", ext, "-out", cert, cwd=workdir,
    )  # fmt: skip
    return Issued(ca_cert, cert, key)
