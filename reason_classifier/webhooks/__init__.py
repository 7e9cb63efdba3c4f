"""Alerts to the team that owns a reason, as signed webhooks: what is sent, how it is signed and verified,
and how one delivery is tried. The service keeps them in an outbox and retries them; a receiver needs
only `verify`."""

from .delivery import Attempt, AttemptResult, RetryPolicy, deliver
from .destinations import WebhookDestination, WebhookFormat
from .payload import Alert, OfferRef, alert_id, render_body
from .signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, SignatureError, sign, verify

__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "Alert",
    "Attempt",
    "AttemptResult",
    "OfferRef",
    "RetryPolicy",
    "SignatureError",
    "WebhookDestination",
    "WebhookFormat",
    "alert_id",
    "deliver",
    "render_body",
    "sign",
    "verify",
]
