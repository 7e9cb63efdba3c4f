"""A fixed set of requests to the service and its answers, to show a refactoring changed no response.

`record(classifier, folder)` runs the app on the real model with an SQLite store and an API key, sends
the requests below (classify, batch, taxonomy, health, readiness, trends, outcomes, retention, alerts,
and errors of each kind) and returns every status, content type and body exactly as sent, with request
ids and the times outcomes were recorded replaced by placeholders, followed by the rows the store kept
(answers and outcomes). `tests/service_responses.json` holds
the record of the shipped model; `python tests/service_responses.py` writes it again.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from reason_classifier.classifier import ReasonClassifier
from reason_classifier.service import ServiceSettings, create_app

RECORD = Path(__file__).with_name("service_responses.json")
KEY = {"X-API-Key": "k-1"}
JSON = {"content-type": "application/json"}

ANSWERS = [
    {"text": "My card was declined and the payment failed, I didn't mean to cancel", "customer_id": "c-7", "mrr": 49},
    {"text": "It's simply too expensive for us, not worth the money", "plan": "pro", "mrr": 250.5},
    {"text": "It's simply too expensive for us", "plan": "starter", "mrr": 12, "metadata": {"contract": "annual"}},
    {"text": "asdf", "customer_id": "c-9"},
    {"text": "The app keeps crashing when I export reports", "language": "en", "metadata": {"contract": "monthly"}},
    {"text": "太贵了", "plan": "pro", "metadata": {"contract": "annual", "tenure": 7}},
    {"text": "Nikt nie odpowiadał na zgłoszenia.", "customer_id": "c-11", "plan": "business", "mrr": 900},
    {"text": "We closed the company.", "mrr": 0},
    {"text": "Support never answered my tickets", "customer_id": "c-12", "plan": "pro", "mrr": 79.0},
]
BATCH = {
    "items": [
        {"text": "Zu teuer für unser kleines Team", "plan": "starter"},
        {"text": "We moved to a competitor with better integrations", "customer_id": "c-20", "mrr": 300},
        {"text": "need to cut costs", "metadata": {"contract": "monthly"}},
    ]
}
TRENDS = [
    {},
    {"period": "week", "since": "2026-02-01", "until": "2026-02-28"},
    {"period": "quarter", "by": ["metadata.contract", "mrr:50,200"], "weight": ""},
    {"by": ["language", "plan"], "since": "2026-03-01", "until": "2026-03-31", "timezone": "Europe/Warsaw"},
    {"by": ["text"]},
    {"by": ["mrr"]},
    {"weight": "text"},
    {"timezone": "Mars/Olympus"},
    {"period": "day"},
]
ERRORS: list[tuple[str, str, dict[str, Any]]] = [
    ("post", "/v1/classify", {"json": {"text": "   "}}),
    ("post", "/v1/classify", {"json": {"text": "x" * 5001}}),
    ("post", "/v1/classify", {"content": b'{"text": "\\ud800 too expensive"}', "headers": JSON}),
    ("post", "/v1/classify", {"json": {"text": "fine", "mrr": -1}}),
    ("post", "/v1/classify", {"json": {"text": "fine", "language": "English"}}),
    ("post", "/v1/classify", {"json": {"text": "fine", "unknown": 1}}),
    ("post", "/v1/classify", {"json": {}}),
    ("post", "/v1/classify", {"content": b"{not json", "headers": JSON}),
    ("post", "/v1/classify", {"content": b"x" * 1_100_000, "headers": JSON}),
    ("post", "/v1/classify/batch", {"json": {"items": []}}),
    ("post", "/v1/classify/batch", {"json": {"items": [{"text": "ok"}] * 101}}),
    ("post", "/v1/classify/batch", {"json": {"items": [{"text": "ok"}, {"text": ""}]}}),
    ("get", "/v1/classify", {}),
    ("get", "/v1/nothing", {}),
]
OUTCOMES = [
    {"customer_id": "c-12", "outcome": "accepted", "mrr_kept": 60},
    {"customer_id": "c-12", "outcome": "accepted", "mrr_kept": 60},
    {"customer_id": "c-12", "outcome": "cancelled"},
    {"customer_id": "c-7", "outcome": "declined"},
    {"customer_id": "c-20", "outcome": "paused"},
    {"customer_id": "c-11", "outcome": "downgraded", "mrr_kept": 400.5},
    {"customer_id": "c-404", "outcome": "accepted"},
    {"request_id": "no-such-request", "outcome": "accepted"},
    {"outcome": "accepted"},
    {"customer_id": "c-9", "outcome": "won"},
    {"customer_id": "c-9", "outcome": "accepted", "mrr_kept": -1},
]
RETENTION = [
    {},
    {"period": "quarter", "by": ["plan"]},
    {"by": ["metadata.contract", "mrr:50,200"], "horizon_months": 6},
    {"period": "week", "since": "2026-02-01", "until": "2026-03-31", "timezone": "Europe/Warsaw"},
    {"by": ["customer_id"]},
    {"horizon_months": 0},
    {"timezone": "Mars/Olympus"},
]
ALERTS: list[tuple[str, str, dict[str, Any]]] = [
    ("get", "/v1/alerts/dead", {}),
    ("post", "/v1/alerts/replay", {"json": {}}),
    ("post", "/v1/alerts/replay", {"json": {"unknown": 1}}),
]
OUTCOME_TIME = "2026-03-30 12:00:00.000000"
RECORDED_AT = re.compile(r'"recorded_at":"[^"]*"')
TIMES = [f"2026-0{month}-{day:02d}T10:00:00+00:00" for month in (1, 2, 3) for day in (3, 9, 17, 28)]


def record(classifier: ReasonClassifier, folder: Path) -> dict[str, Any]:
    database = folder / "answers.sqlite3"
    settings = ServiceSettings.load(
        store=str(database), api_keys=["k-1"], trends_cache_seconds=0, predict_timeout_seconds=120
    )
    responses: list[dict[str, Any]] = []
    with TestClient(create_app(settings, classifier=classifier), raise_server_exceptions=False) as client:
        state = client.app.state.service  # type: ignore[attr-defined]
        client.get("/healthz")  # before ready: its answer depends on timing, not recorded
        _wait_ready(client)

        def send(method: str, path: str, **kwargs: Any) -> None:
            headers = {**KEY, **kwargs.pop("headers", {})}
            response = getattr(client, method)(path, headers=headers, **kwargs)
            responses.append(_recorded(method, path, kwargs, response))

        send("get", "/healthz")
        send("get", "/readyz")
        send("get", "/v1/taxonomy")
        for answer in ANSWERS:
            send("post", "/v1/classify", json=answer)
        send("post", "/v1/classify/batch", json=BATCH)
        for method, path, kwargs in ERRORS:
            send(method, path, **dict(kwargs))
        responses.append(_recorded("post", "/v1/classify", {}, client.post("/v1/classify", json=ANSWERS[0])))
        assert state.store.flush()
        with sqlite3.connect(database) as connection:  # fixed times: trends must not depend on today
            ids = [row[0] for row in connection.execute("SELECT id FROM classified_answers ORDER BY id")]
            for i, row_id in enumerate(ids):
                connection.execute(
                    "UPDATE classified_answers SET created_at = ? WHERE id = ?",
                    (TIMES[i % len(TIMES)].replace("T", " ").replace("+00:00", ".000000"), row_id),
                )
        for params in TRENDS:
            send("get", "/v1/trends", params=params)
        for outcome in OUTCOMES:
            send("post", "/v1/outcomes", json=outcome)
        responses.append(_recorded("post", "/v1/outcomes", {}, client.post("/v1/outcomes", json=OUTCOMES[0])))
        with sqlite3.connect(database) as connection:  # a fixed time: the report must not depend on today
            connection.execute("UPDATE offer_outcomes SET created_at = ?", (OUTCOME_TIME,))
        for params in RETENTION:
            send("get", "/v1/retention", params=params)
        for method, path, kwargs in ALERTS:
            send(method, path, **dict(kwargs))
    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        rows = [dict(row) for row in connection.execute("SELECT * FROM classified_answers ORDER BY id")]
        outcomes = [dict(row) for row in connection.execute("SELECT * FROM offer_outcomes ORDER BY id")]
    request_ids = {row["request_id"] for row in rows}
    for row in [*rows, *outcomes]:
        row["request_id"] = "<request id>" if row["request_id"] in request_ids else row["request_id"]
    for response in responses:  # an outcome's answer is named by its (random) request id
        for request_id in request_ids:
            response["body"] = response["body"].replace(request_id, "<request id>")
        response["body"] = RECORDED_AT.sub('"recorded_at":"<time>"', response["body"])
    result = {"model_version": classifier.version, "responses": responses, "stored": rows, "outcomes": outcomes}
    return json.loads(json.dumps(result).replace(str(folder), "<folder>"))


def _wait_ready(client: TestClient) -> None:
    import time

    deadline = time.monotonic() + 60
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").text
        time.sleep(0.01)


def _recorded(method: str, path: str, kwargs: dict[str, Any], response: Any) -> dict[str, Any]:
    body = response.text
    request_id = response.headers.get("x-request-id", "")
    if request_id:
        body = body.replace(request_id, "<request id>")
    sent = kwargs.get("json", kwargs.get("params"))
    return {
        "request": f"{method.upper()} {path}",
        "sent": sent if sent is None or len(json.dumps(sent)) < 300 else f"<{len(json.dumps(sent))} bytes>",
        "status": response.status_code,
        "content_type": response.headers.get("content-type"),
        "body": body,
    }


if __name__ == "__main__":
    import tempfile

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else RECORD
    with tempfile.TemporaryDirectory() as folder:
        result = record(ReasonClassifier.load(), Path(folder))
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(result['responses'])} responses and {len(result['stored'])} stored rows written to {out}")
