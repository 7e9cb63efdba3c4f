"""Prometheus metrics of one app: requests, latency, predictions per category, model and store health.

Each app has its own registry, so several apps in one process (tests) do not collide. The service
is one process (`serve --workers N` runs N model threads in it, not N processes), so these are the
whole service's numbers, whichever connection scrapes them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from reason_classifier.webhooks.outbox import Outbox

    from .store import AnswerStore

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "reason_classifier_http_requests",
            "HTTP requests by route, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "reason_classifier_http_request_duration_seconds",
            "Time from request to response, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "reason_classifier_predictions",
            "Classified answers by category.",
            ["category"],
            registry=self.registry,
        )
        self.predict_seconds = Histogram(
            "reason_classifier_predict_duration_seconds",
            "Time of one call to the model (a batch of answers).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_errors = Counter(
            "reason_classifier_model_errors",
            "Requests answered 503 because the model failed or timed out.",
            ["reason"],
            registry=self.registry,
        )
        self.store_rejected = Counter(
            "reason_classifier_store_rejected_rows",
            "Classified answers the database refused on their own (kept in the spool's rejected.jsonl).",
            registry=self.registry,
        )
        self.store_refused = Counter(
            "reason_classifier_store_refused_requests",
            "Requests answered 503 because their answers could not be "
            "stored (spool unwritable, or the database away with store_when_down=refuse).",
            registry=self.registry,
        )
        self.store_up = Gauge(
            "reason_classifier_store_up",
            "1 while the last write to the database succeeded, 0 while it is retried.",
            registry=self.registry,
        )
        self.store_pending = Gauge(
            "reason_classifier_store_pending_rows",
            "Acknowledged answers in the spool, not yet in the database.",
            registry=self.registry,
        )
        self.store_written = Gauge(
            "reason_classifier_store_written_rows",
            "Answers this process wrote to the database.",
            registry=self.registry,
        )
        self.alert_attempts = Counter(
            "reason_classifier_alert_attempts",
            "Webhook deliveries tried by this process, by result: delivered, retry (timeout, connection, 5xx) "
            "or refused (the receiver will not take it).",
            ["result"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "reason_classifier_model_ready", "1 once the model is loaded and warmed.", registry=self.registry
        )

    def track_store(self, store: AnswerStore) -> None:
        self.store_up.set_function(lambda: 0.0 if store.up is False else 1.0)
        self.store_pending.set_function(lambda: store.pending_rows)
        self.store_written.set_function(lambda: store.written_rows)

    def track_outbox(self, outbox: Outbox) -> None:
        self.registry.register(_AlertStates(outbox))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _AlertStates(Collector):
    """`reason_classifier_alerts{state}` from the outbox (every replica's alerts), read at most once a second;
    while the database cannot be read, the last numbers read."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._read_at = float("-inf")
        self._counts: dict[str, int] = {"pending": 0, "retrying": 0, "delivered": 0, "dead": 0}

    def collect(self) -> Iterator[Any]:
        if time.monotonic() - self._read_at >= 1.0:
            try:
                self._counts = self.outbox.counts()
                self._read_at = time.monotonic()
            except Exception:  # the database is away; /metrics must still answer
                pass
        family = GaugeMetricFamily(
            "reason_classifier_alerts",
            "Alerts in the store's outbox by state: pending (not tried yet), retrying, delivered, dead.",
            labels=["state"],
        )
        for state, count in self._counts.items():
            family.add_metric([state], count)
        yield family
