"""The background dispatcher: takes due alerts from the outbox and delivers them, off the cancel flow's path.

One thread claims batches of due alerts and sends them on a few worker threads (a slow receiver
holds up only its own alerts' workers, up to the timeout), then records each attempt. It sleeps
until the next alert is due, or until `wake()` says new alerts were written. When the database
cannot be read it waits and tries again: the alerts are safe in the outbox. Since everything it
needs is in the outbox, a restarted service resumes where the last one stopped.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from .delivery import Attempt, AttemptResult, RetryPolicy, deliver
from .destinations import WebhookDestination
from .outbox import DEAD, Claimed, Outbox

log = logging.getLogger("reason_classifier.webhooks")

LEASE_MARGIN_SECONDS = 30.0


class Dispatcher:
    def __init__(
        self,
        outbox: Outbox,
        destinations: dict[str, WebhookDestination],
        policy: RetryPolicy,
        *,
        batch: int = 32,
        concurrency: int = 4,
        idle_seconds: float = 1.0,
        on_attempt: Callable[[Attempt, str], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.destinations = destinations
        self.policy = policy
        self.batch = batch
        self.idle_seconds = idle_seconds
        self._on_attempt = on_attempt or (lambda attempt, status: None)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="alert-delivery")
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-dispatcher", daemon=True)
        self._rng = random.Random()
        self.problem: str | None = None

    @property
    def lease_seconds(self) -> float:
        """How long a claimed alert is left alone: one attempt's timeout (connect and read) and a margin."""
        return 2 * self.policy.timeout_seconds + LEASE_MARGIN_SECONDS

    def start(self) -> Dispatcher:
        self._thread.start()
        return self

    def wake(self) -> None:
        """New alerts are in the outbox: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; attempts under way finish (their leases keep others off them until then)."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        delay = self.idle_seconds
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                sent = self.dispatch_once()
                wait = 0.0 if sent else self._until_next_due()
                if self.problem is not None:
                    log.info("the outbox can be read again")
                self.problem, delay = None, self.idle_seconds
            except Exception as error:  # the database is away: the alerts wait in it
                problem = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
                if problem != self.problem:
                    log.warning("cannot read the alert outbox (%s); trying again", problem)
                self.problem = problem
                wait, delay = delay, min(delay * 2, 30.0)
            if wait:
                self._wake.wait(wait)

    def _until_next_due(self) -> float:
        due = self.outbox.next_due()
        if due is None:
            return self.idle_seconds
        return min(self.idle_seconds, max(0.0, (due - datetime.now(UTC)).total_seconds()))

    def dispatch_once(self) -> int:
        """Claim one batch of due alerts and try each once; returns how many were tried."""
        claimed = self.outbox.claim(self.batch, self.lease_seconds)
        list(self._pool.map(self._attempt, claimed))  # every attempt recorded before the next claim
        return len(claimed)

    def _attempt(self, claimed: Claimed) -> None:
        destination = self.destinations.get(claimed.alert.team)
        if destination is None:
            attempt = Attempt(AttemptResult.refused, None, f"no webhook is configured for team {claimed.alert.team}", 0)
        else:
            attempt = deliver(claimed.alert, destination, self.policy.timeout_seconds)
        status = self.outbox.record(claimed, attempt, self.policy, rng=self._rng)
        if status == DEAD:
            log.warning(
                "alert %s to team %s is dead after %d attempt(s): %s",
                claimed.alert.id,
                claimed.alert.team,
                claimed.attempts + 1,
                attempt.error,
            )
        self._on_attempt(attempt, status)
