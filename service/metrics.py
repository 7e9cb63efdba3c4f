"""Prometheus metrics of one app: requests, latency, predictions per category, model and store health.

Each app has its own registry, so several apps in one process (tests) do not collide. With more than
one uvicorn worker, each worker exports its own numbers; scrape them through the load balancer or
run one worker per container.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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
        self.store_errors = Counter(
            "reason_classifier_store_lost_rows",
            "Classified answers the store could not write.",
            registry=self.registry,
        )
        self.ready = Gauge(
            "reason_classifier_model_ready", "1 once the model is loaded and warmed.", registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
