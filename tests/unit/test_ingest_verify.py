"""Webhook signatures, checked against headers computed here with hmac/hashlib (the
vendors' documented schemes), not with the code under test; and the ingest's settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from streams.config import Settings
from streams.exporter import HttpError, _parse
from streams.ingest import STRIPE_RETRY_SECONDS, horizon_problem
from streams.ingest_verify import (
    Unverified,
    segment_verify,
    stripe_verifier,
    zendesk_verifier,
)

BODY = b'{"id": "evt_1", "type": "invoice.paid"}'
SECRET = "whsec_abc"
NOW = 1_765_000_000.0


def stripe_header(body: bytes, at: int, secret: str = SECRET) -> str:
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def test_stripe_signature() -> None:
    verify = stripe_verifier(300)
    now = int(time.time())  # the stripe helper reads the clock itself
    verify(BODY, {"stripe-signature": stripe_header(BODY, now)}, SECRET, NOW)
    bad = [
        {"stripe-signature": stripe_header(BODY + b" ", now)},
        {"stripe-signature": stripe_header(BODY, now, "whsec_other")},
        {"stripe-signature": stripe_header(BODY, now - 301)},
        {"stripe-signature": "garbage"},
        {},
    ]
    for headers in bad:
        with pytest.raises(Unverified):
            verify(BODY, headers, SECRET, NOW)


def zendesk_headers(body: bytes, stamp: str, secret: str = SECRET) -> dict[str, str]:
    mac = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return {
        "x-zendesk-webhook-signature": base64.b64encode(mac).decode(),
        "x-zendesk-webhook-signature-timestamp": stamp,
    }


def test_zendesk_signature() -> None:
    verify = zendesk_verifier(300)
    stamp = "2025-12-06T05:46:40Z"  # NOW
    verify(BODY, zendesk_headers(BODY, stamp), SECRET, NOW)
    verify(BODY, zendesk_headers(BODY, stamp), SECRET, NOW + 300)
    with pytest.raises(Unverified, match="300 s"):
        verify(BODY, zendesk_headers(BODY, stamp), SECRET, NOW + 301)
    with pytest.raises(Unverified, match="does not match"):
        verify(BODY + b" ", zendesk_headers(BODY, stamp), SECRET, NOW)
    with pytest.raises(Unverified, match="does not match"):
        verify(BODY, zendesk_headers(BODY, stamp, "other"), SECRET, NOW)
    with pytest.raises(Unverified, match="needed"):
        verify(BODY, {}, SECRET, NOW)


def test_segment_signature() -> None:
    mac = hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    segment_verify(BODY, {"x-signature": mac}, SECRET, NOW)
    segment_verify(BODY, {"x-signature": mac.upper()}, SECRET, NOW)
    for headers in ({"x-signature": mac[:-1] + "0"}, {"x-signature": ""}, {}):
        with pytest.raises(Unverified):
            segment_verify(BODY, headers, SECRET, NOW)


def test_a_stripe_source_needs_a_three_day_dedup_horizon() -> None:
    assert STRIPE_RETRY_SECONDS == 259_200
    no_stripe = Settings.model_construct(stripe_webhook_secret=None, dedup_horizon=86_400)
    assert horizon_problem(no_stripe) is None  # no Stripe source: no constraint
    short = Settings(stripe_webhook_secret="whsec_x", dedup_horizon=86_400)
    problem = horizon_problem(short)
    assert problem is not None and "259200" in problem and "86400" in problem
    assert horizon_problem(Settings(stripe_webhook_secret="whsec_x", dedup_horizon=259_200)) is None


def test_source_secrets_are_redacted_and_off_by_default() -> None:
    assert Settings().source_secrets() == {"stripe": None, "zendesk": None, "segment": None}
    settings = Settings(
        stripe_webhook_secret="whsec_1", zendesk_webhook_secret="z1", segment_shared_secret="s1"
    )
    assert {"whsec_1", "z1", "s1"} <= set(settings.secrets())
    assert "whsec_1" not in repr(settings)


def head(request_line: str, **headers: str) -> bytes:
    lines = [request_line, *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_post_bodies_are_bounded_before_they_are_read() -> None:
    ok = _parse(head("POST /ingest/stripe HTTP/1.1", **{"Content-Length": "100"}), 100)
    assert (ok.method, ok.path) == ("POST", "/ingest/stripe")
    cases = [
        (head("POST / HTTP/1.1", **{"Content-Length": "101"}), 100, 413),
        (head("POST / HTTP/1.1", **{"Transfer-Encoding": "chunked"}), 100, 411),
        (head("POST / HTTP/1.1"), 100, 411),
        (head("POST / HTTP/1.1", **{"Content-Length": "-1"}), 100, 400),
        (head("POST / HTTP/1.1", **{"Content-Length": "10"}), 0, 405),  # the metrics port
    ]
    for raw, limit, status in cases:
        with pytest.raises(HttpError) as caught:
            _parse(raw, limit)
        assert caught.value.status == status
