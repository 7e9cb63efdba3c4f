"""One delivery attempt of an alert, and when to try again.

An attempt POSTs the signed body with a timeout. A 2xx is delivered. A timeout, a connection that
cannot be made or breaks, a 5xx, 408 or 429 is worth retrying: the receiver is down, slow or busy.
Anything else (a 3xx, a 4xx such as 401 or 404) says the receiver refuses this alert as it is:
retrying the same bytes cannot help, so it goes straight to the dead letter, from where it can be
replayed once the receiver is fixed. Retries wait exponentially longer, with jitter so that many
alerts failed together do not all come back at the same instant, until `give_up_after_seconds`
since the alert was written.
"""

from __future__ import annotations

import http.client
import random
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .destinations import WebhookDestination
from .payload import Alert, render_body
from .signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign

USER_AGENT = "reason-classifier-webhooks/1"
RETRY_STATUSES = frozenset({408, 429})
_MAX_RESPONSE_BYTES = 4096


class RetryPolicy(BaseModel):
    """How long one attempt may take and how retries are spaced.

    timeout_seconds: the longest wait for the receiver to connect, and then for each read of its answer;
    first_delay_seconds: the wait after the first failure, doubled after each further one, up to
    max_delay_seconds; each wait is jittered to between half and all of it;
    give_up_after_seconds: how long after the alert was written it may still be tried; past that it is
    dead (kept, listed and replayable, never dropped).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    first_delay_seconds: float = Field(default=1.0, gt=0)
    max_delay_seconds: float = Field(default=600.0, gt=0)
    give_up_after_seconds: float = Field(default=86_400.0, gt=0)

    @model_validator(mode="after")
    def _delays_in_order(self) -> RetryPolicy:
        if self.first_delay_seconds > self.max_delay_seconds:
            raise ValueError(
                f"first_delay_seconds ({self.first_delay_seconds}) must not be over max_delay_seconds "
                f"({self.max_delay_seconds})"
            )
        return self

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the `failures`-th failure in a row (1 for the first)."""
        base = min(self.max_delay_seconds, self.first_delay_seconds * 2 ** max(0, min(failures - 1, 60)))
        return base / 2 + (rng or random).uniform(0, base / 2)

    def next_attempt(
        self, failures: int, created_at: datetime, now: datetime, rng: random.Random | None = None
    ) -> datetime | None:
        """When to try again after `failures` failures, or None when that would be past the horizon (dead)."""
        due = now + timedelta(seconds=self.delay(failures, rng))
        if due > created_at + timedelta(seconds=self.give_up_after_seconds):
            return None
        return due


class AttemptResult(str, Enum):  # noqa: UP042 - StrEnum changes str() and f-strings of members (behaviour kept)
    delivered = "delivered"
    retry = "retry"
    refused = "refused"
    """The receiver answered that it will not take this alert (not 2xx, not worth retrying)."""


@dataclass(frozen=True)
class Attempt:
    result: AttemptResult
    status: int | None
    """The receiver's HTTP status, None when none came (timeout, connection refused)."""
    error: str | None
    """What went wrong, for the outbox and the log: never the body, never the secret."""
    seconds: float


def deliver(alert: Alert, destination: WebhookDestination, timeout_seconds: float, now: float | None = None) -> Attempt:
    """POST `alert` to `destination`, signed, with the idempotency key; one attempt, never raises."""
    body = render_body(alert, destination)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(body, destination.secret, int(time.time() if now is None else now)),
        IDEMPOTENCY_HEADER: alert.id,
    }
    return post(destination.url, body, headers, timeout_seconds)


def post(url: str, body: bytes, headers: dict[str, str], timeout_seconds: float) -> Attempt:
    """One POST, classified as delivered, worth a retry, or refused. Redirects are not followed: a signed
    alert goes only where it was configured to."""
    started = time.monotonic()
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout_seconds, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout_seconds)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(_MAX_RESPONSE_BYTES)
        status = response.status
    except TimeoutError:
        return Attempt(AttemptResult.retry, None, f"no answer within {timeout_seconds:g} s", _since(started))
    except (OSError, http.client.HTTPException) as error:
        return Attempt(AttemptResult.retry, None, _describe(error), _since(started))
    finally:
        connection.close()
    seconds = _since(started)
    if 200 <= status < 300:
        return Attempt(AttemptResult.delivered, status, None, seconds)
    if status >= 500 or status in RETRY_STATUSES:
        return Attempt(AttemptResult.retry, status, f"HTTP {status}", seconds)
    return Attempt(AttemptResult.refused, status, f"HTTP {status}: the receiver refuses the alert", seconds)


def _since(started: float) -> float:
    return time.monotonic() - started


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:300] if text else type(error).__name__
