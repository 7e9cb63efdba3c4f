"""Alert webhooks (issue 16): the body, its signature and verification, one delivery and its retry policy."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from reason_classifier.webhooks import (
    SIGNATURE_HEADER,
    Alert,
    AttemptResult,
    OfferRef,
    RetryPolicy,
    SignatureError,
    WebhookDestination,
    alert_id,
    deliver,
    render_body,
    sign,
    verify,
)
from tests.webhook_receiver import Receiver, free_port

SECRET = "whsec_0123456789abcdef"


def alert(**changes) -> Alert:
    data = {
        "id": alert_id("req-1", 0, "support"),
        "created_at": datetime(2026, 6, 1, 12, 0, tzinfo=UTC),
        "team": "support",
        "request_id": "req-1",
        "customer_id": "c-42",
        "plan": "pro",
        "mrr": 79.0,
        "category": "support",
        "sub_reason": "slow_response",
        "confidence": 0.91,
        "language": "de",
        "offer": OfferRef(id="senior_support", kind="escalation"),
        "experiment": None,
        "variant": None,
        "text": "Niemand hat <geantwortet> & so",
    }
    return Alert(**(data | changes))


def test_the_body_carries_the_customer_reason_and_offer_and_the_text_only_when_configured():
    plain = json.loads(render_body(alert(), WebhookDestination(url="http://x.test/", secret=SECRET)))
    assert plain["customer_id"] == "c-42" and plain["plan"] == "pro" and plain["mrr"] == 79.0
    assert plain["category"] == "support" and plain["sub_reason"] == "slow_response" and plain["confidence"] == 0.91
    assert plain["language"] == "de" and plain["offer"] == {"id": "senior_support", "kind": "escalation"}
    assert plain["request_id"] == "req-1" and plain["created_at"] == "2026-06-01T12:00:00Z"
    assert plain["id"] == alert_id("req-1", 0, "support") and plain["type"] == "churn_reason.alert"
    assert "text" not in plain
    with_text = json.loads(
        render_body(alert(), WebhookDestination(url="http://x.test/", secret=SECRET, include_text=True))
    )
    assert with_text["text"] == "Niemand hat <geantwortet> & so"


def test_alert_ids_are_stable_per_request_item_and_team():
    assert alert_id("r", 0, "support") == alert_id("r", 0, "support")
    assert len({alert_id("r", 0, "support"), alert_id("r", 1, "support"), alert_id("r", 0, "product")}) == 3


def test_slack_format_is_one_escaped_message():
    destination = WebhookDestination(
        url="https://hooks.slack.test/T/B/x", secret=SECRET, format="slack", include_text=True
    )
    body = json.loads(render_body(alert(customer_id="c<1>", mrr=0.0), destination))
    assert list(body) == ["text"]
    text = body["text"]
    assert text.startswith(
        "*Churn alert for support*: `c&lt;1&gt;` (plan pro, MRR 0.00) is leaving: support / slow_response"
    )
    assert "offer senior_support (escalation)" in text and "language de" in text and "request req-1" in text
    assert text.endswith("> Niemand hat &lt;geantwortet&gt; &amp; so")


def test_a_signature_verifies_and_any_change_is_refused():
    body = render_body(alert(), WebhookDestination(url="http://x.test/", secret=SECRET))
    header = sign(body, SECRET, timestamp=1_780_000_000)
    assert header.startswith("t=1780000000,v1=")
    # HMAC-SHA256 of "1780000000." + body: checked against the standard library, not against sign() itself
    import hashlib
    import hmac

    assert header.split("v1=")[1] == hmac.new(SECRET.encode(), b"1780000000." + body, hashlib.sha256).hexdigest()
    assert verify(body, header, SECRET, now=1_780_000_100) == 1_780_000_000
    assert verify(body, header, ["whsec_new_secret_0000", SECRET], now=1_780_000_000) == 1_780_000_000  # rotation
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(body.replace(b"c-42", b"c-43"), header, SECRET, now=1_780_000_000)
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(body, header.replace("t=1780000000", "t=1780000001"), SECRET, now=1_780_000_000)
    with pytest.raises(SignatureError, match="outside the tolerance of 300 s"):
        verify(body, header, SECRET, now=1_780_000_301)
    with pytest.raises(SignatureError, match=f"no {SIGNATURE_HEADER} header"):
        verify(body, None, SECRET)
    with pytest.raises(SignatureError, match="expected t=<unix time>,v1=<hex hmac>"):
        verify(body, "sha256=abc", SECRET)
    with pytest.raises(SignatureError, match="is not a Unix time"):
        verify(body, "t=soon,v1=ab", SECRET)


def test_a_destination_needs_an_http_url_and_a_real_secret():
    with pytest.raises(ValueError, match="is not an http:// or https:// URL"):
        WebhookDestination(url="ftp://x.test/", secret=SECRET)
    with pytest.raises(ValueError, match="at least 16 characters"):
        WebhookDestination(url="https://x.test/", secret="short")
    with pytest.raises(ValueError, match="must not be blank"):
        WebhookDestination(url="https://x.test/", secret=" " * 20)
    assert SECRET not in repr(WebhookDestination(url="https://x.test/", secret=SECRET))


def test_one_delivery_is_delivered_retried_or_refused_by_what_the_receiver_does():
    receiver = Receiver(SECRET).start()
    destination = WebhookDestination(url=receiver.url, secret=SECRET)
    try:
        delivered = deliver(alert(), destination, timeout_seconds=2)
        assert delivered.result is AttemptResult.delivered and delivered.status == 200
        [got] = receiver.received
        assert got.idempotency_key == alert().id and json.loads(got.body)["customer_id"] == "c-42"
        for status, result in (
            (500, AttemptResult.retry),
            (503, AttemptResult.retry),
            (429, AttemptResult.retry),
            (404, AttemptResult.refused),
            (401, AttemptResult.refused),
        ):
            receiver.status = status
            attempt = deliver(alert(), destination, timeout_seconds=2)
            assert (attempt.result, attempt.status) == (result, status)
        receiver.status, receiver.delay_seconds = 200, 1.0
        slow = deliver(alert(), destination, timeout_seconds=0.2)
        assert slow.result is AttemptResult.retry and slow.status is None and slow.error == "no answer within 0.2 s"
        assert slow.seconds < 0.9
    finally:
        receiver.stop()
    down = deliver(alert(), WebhookDestination(url=f"http://127.0.0.1:{free_port()}/", secret=SECRET), 1)
    assert down.result is AttemptResult.retry and "ConnectionRefusedError" in (down.error or "")
    assert SECRET not in (down.error or "")


def test_retries_back_off_exponentially_with_jitter_until_the_horizon():
    policy = RetryPolicy(first_delay_seconds=1, max_delay_seconds=60, give_up_after_seconds=3600)
    rng = random.Random(7)
    for failures, base in ((1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (40, 60), (10_000, 60)):
        delays = [policy.delay(failures, rng) for _ in range(200)]
        assert all(base / 2 <= d <= base for d in delays), failures
        assert max(delays) - min(delays) > base / 4  # jittered, not one fixed instant
    created = datetime(2026, 6, 1, tzinfo=UTC)
    assert policy.next_attempt(3, created, created + timedelta(minutes=10), rng) is not None
    assert policy.next_attempt(3, created, created + timedelta(seconds=3599), rng) is None  # past the horizon: dead
    with pytest.raises(ValueError):
        RetryPolicy(timeout_seconds=0)


def test_signing_time_is_now_by_default():
    header = sign(b"{}", SECRET)
    assert abs(int(header[2:12]) - time.time()) < 5
