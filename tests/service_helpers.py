"""Shared by the service tests: an app on the session's loaded model, waited until ready."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from fastapi.testclient import TestClient

from reason_classifier.classifier import ReasonClassifier
from reason_classifier.service import ServiceSettings, create_app


@contextlib.contextmanager
def running(classifier: ReasonClassifier, **settings: object) -> Iterator[TestClient]:
    """A TestClient on a started app that shares `classifier`; yields once /readyz says ready."""
    app = create_app(ServiceSettings.load(**settings), classifier=classifier)
    with TestClient(app, raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.01)
        yield client
