"""Signatures of webhook bodies: HMAC-SHA256 over the timestamp and the body, as Stripe signs its webhooks.

The header reads `t=1767225600,v1=5257a869...`: `t` the Unix time of signing, `v1` the hex HMAC of
`"{t}." + body` under the destination's secret. Signing the timestamp with the body lets a receiver
refuse an old body replayed by someone who captured it (`tolerance_seconds`), and the `v1` name leaves
room for another scheme later. During a change of secret a receiver passes both secrets to `verify`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

from ..errors import ReasonClassifierError

SIGNATURE_HEADER = "Reason-Classifier-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
"""The alert's id: the same on every retry of one alert, so a receiver can drop the duplicates that
at-least-once delivery may bring."""
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(ReasonClassifierError):
    """A webhook's signature header is missing, malformed, too old, or does not match the body."""


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The signature header's value for `body`, signed now (or at `timestamp`, Unix seconds)."""
    if not secret:
        raise ValueError("a webhook secret must not be empty")
    signed_at = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={signed_at},v1={_digest(secret, signed_at, body)}"


def verify(
    body: bytes,
    header: str | None,
    secret: str | Sequence[str],
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check a received webhook: `body` exactly as received (bytes, before any JSON parsing), the
    signature header's value, and the destination's secret (or several, while one replaces another).

    Returns the signing time (Unix seconds); raises `SignatureError` saying what is wrong when the
    header is missing or malformed, older or newer than `tolerance_seconds`, or matches no secret.
    """
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError(f"{SIGNATURE_HEADER}: t={value[:20]!r} is not a Unix time") from None
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError(f"{SIGNATURE_HEADER}: expected t=<unix time>,v1=<hex hmac>")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise SignatureError(
            f"{SIGNATURE_HEADER}: signed {current - timestamp:+.0f} s from now, outside the tolerance of "
            f"{tolerance_seconds:.0f} s (a replayed or delayed webhook, or a clock that is off)"
        )
    secrets = [secret] if isinstance(secret, str) else list(secret)
    for candidate in secrets:
        expected = _digest(candidate, timestamp, body)
        if any(hmac.compare_digest(expected, given) for given in signatures):
            return timestamp
    raise SignatureError(f"{SIGNATURE_HEADER}: no signature matches the body under the given secret(s)")
