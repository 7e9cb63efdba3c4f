"""Shared by the service tests: an app on the session's loaded model, waited until ready."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from fastapi.testclient import TestClient

from reason_classifier.classifier import ReasonClassifier
from reason_classifier.service import ServiceSettings, create_app

PREDICT_TIMEOUT_SECONDS = 30.0


@contextlib.contextmanager
def running(classifier: ReasonClassifier, **settings: object) -> Iterator[TestClient]:
    """A TestClient on a started app that shares `classifier`; yields once /readyz says ready.

    The model's deadline is `PREDICT_TIMEOUT_SECONDS` unless a test sets its own: on a loaded test machine the
    default 1 s deadline made tests about something else (one answer failing another, every row stored) fail
    on 503 timeouts."""
    settings.setdefault("predict_timeout_seconds", PREDICT_TIMEOUT_SECONDS)
    app = create_app(ServiceSettings.load(**settings), classifier=classifier)
    with TestClient(app, raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.01)
        yield client
