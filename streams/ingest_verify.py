"""Who sent a webhook: each vendor's own signature scheme, checked before anything is read.

Stripe goes through the ``stripe`` package's helper (``t=`` timestamp and
``v1=`` HMAC-SHA256 of ``timestamp.body``, with a tolerance against
replays); Zendesk signs ``timestamp + body`` with HMAC-SHA256, base64; a
Segment webhook destination signs the body with HMAC-SHA1, hex. Every
comparison is constant-time, and no message names the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime

import stripe


class Unverified(Exception):
    """The request does not prove it comes from the vendor; the message says why."""


Verifier = Callable[[bytes, Mapping[str, str], str, float], None]
"""``(body, lower-cased headers, secret, now)``; raises :class:`Unverified`."""


def stripe_verifier(tolerance: int) -> Verifier:
    """Stripe's ``Stripe-Signature``, checked by the ``stripe`` package itself."""

    def verify(body: bytes, headers: Mapping[str, str], secret: str, now: float) -> None:
        del now  # the stripe helper reads the clock itself
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Unverified("body is not UTF-8") from None
        try:
            stripe.WebhookSignature.verify_header(
                text, headers.get("stripe-signature"), secret, tolerance
            )
        except stripe.SignatureVerificationError as exc:
            raise Unverified(f"Stripe-Signature: {exc.user_message or exc}") from None

    return verify


def zendesk_verifier(tolerance: int) -> Verifier:
    """``X-Zendesk-Webhook-Signature``: base64 HMAC-SHA256 of the timestamp header + body."""

    def verify(body: bytes, headers: Mapping[str, str], secret: str, now: float) -> None:
        signature = headers.get("x-zendesk-webhook-signature")
        stamp = headers.get("x-zendesk-webhook-signature-timestamp")
        if not signature or not stamp:
            raise Unverified("X-Zendesk-Webhook-Signature and its -Timestamp header are needed")
        digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
        if not hmac.compare_digest(base64.b64encode(digest), signature.encode()):
            raise Unverified("X-Zendesk-Webhook-Signature does not match the body")
        try:
            signed = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise Unverified("X-Zendesk-Webhook-Signature-Timestamp is not a time") from None
        if abs(now - signed) > tolerance:
            raise Unverified(f"Zendesk signature timestamp {stamp} is over {tolerance} s away")

    return verify


def segment_verify(body: bytes, headers: Mapping[str, str], secret: str, now: float) -> None:
    """``X-Signature``: hex HMAC-SHA1 of the body with the destination's shared secret."""
    del now  # Segment signs no timestamp; a replay is a duplicate id, counted once
    signature = headers.get("x-signature", "")
    expected = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    if not signature or not hmac.compare_digest(expected, signature.lower()):
        raise Unverified("X-Signature does not match the body")


def sign_zendesk(body: bytes, secret: str, stamp: str) -> str:
    """The header Zendesk would send (tests and local trials)."""
    digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def sign_segment(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
