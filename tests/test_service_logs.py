"""The served process's logs (issue 15 item 8): one line per event, JSON when asked, with request id, route,
status and duration; a start-up line; refusals with their reason; never an answer text or customer id
below debug, and never a traceback for a store that cannot be written."""

from __future__ import annotations

import json
import time

from service_process import ServiceProcess

SECRET = "my therapist said I should cancel everything"
CUSTOMER = "cust-84721"


def _lines(output: str) -> list[dict]:
    """Every line the server wrote, each parsed as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_serve_logs_one_json_line_per_event_with_request_ids_and_never_an_answer_or_customer(tmp_path, tiny_model):
    """Observed: the service's loggers had no handler: no access line, no start-up line, no refusal reason."""
    with ServiceProcess(
        store=str(tmp_path / "answers.db"), log_format="json", api_keys="secret1", model=tiny_model
    ) as server:
        key = {"X-API-Key": "secret1"}
        sent = [
            ("POST", "/v1/classify", {"text": SECRET, "customer_id": CUSTOMER}, key),
            ("POST", "/v1/classify", {"text": "  ", "customer_id": CUSTOMER}, key),
            ("POST", "/v1/classify", {"text": SECRET}, {}),
            ("GET", "/v1/nothing", None, key),
            ("POST", "/v1/classify", {"text": SECRET, "mrr": -1}, key),
        ]
        statuses = [
            server.request(method, path, body, headers=headers | {"X-Request-ID": f"log-test-{i}"})[0]
            for i, (method, path, body, headers) in enumerate(sent)
        ]
        assert statuses == [200, 422, 401, 404, 422]
        server.terminate()
        output = server.output()
    assert SECRET not in output and CUSTOMER not in output
    lines = _lines(output)
    assert all({"time", "level", "logger", "request_id", "message"} <= set(line) for line in lines)
    messages = [line["message"] for line in lines if line["logger"].startswith("service")]
    assert any(m.startswith("starting on http://127.0.0.1:") for m in messages), messages
    assert any(m.startswith("ready: model") for m in messages), messages
    routes = ["/v1/classify"] * 3 + ["unmatched", "/v1/classify"]
    for i, (status, route) in enumerate(zip(statuses, routes, strict=True)):
        [access] = [
            line for line in lines if line["logger"] == "service.access" and line["request_id"] == f"log-test-{i}"
        ]
        assert (access["method"], access["route"], access["status"]) == (sent[i][0], route, status)
        assert isinstance(access["duration_ms"], float) and access["duration_ms"] > 0
    refusals = {
        (line["request_id"], line["status"], line["code"], line["field"])
        for line in lines
        if line["message"].startswith("refused")
    }
    assert {
        ("log-test-1", 422, "empty_text", "text"),
        ("log-test-2", 401, "unauthorized", "X-API-Key"),
        ("log-test-3", 404, "not_found", None),
        ("log-test-4", 422, "invalid_request", "mrr"),
    } <= refusals
    [validation] = [
        line for line in lines if line["request_id"] == "log-test-4" and line["message"].startswith("refused")
    ]
    assert validation["reason"] == "greater_than_equal"


def test_text_lines_by_default_one_per_event(tiny_model):
    with ServiceProcess(model=tiny_model) as server:
        server.request("POST", "/v1/classify", {"text": SECRET}, headers={"X-Request-ID": "text-line"})
        server.terminate()
        output = server.output()
    assert SECRET not in output
    [access] = [line for line in output.splitlines() if " service.access text-line " in line]
    assert access.endswith("ms") and " POST /v1/classify 200 " in access


def test_a_store_that_cannot_be_written_is_one_line_per_change_not_a_traceback(tmp_path, tiny_model):
    """Observed: each lost store row wrote a 3.5 KB traceback."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the store's folder should be")
    with ServiceProcess(store=str(blocked / "answers.db"), ready=False, log_format="json", model=tiny_model) as server:
        deadline = time.monotonic() + 90
        body: dict | str = {}
        while time.monotonic() < deadline:
            try:
                _, body = server.request("GET", "/readyz", timeout=2)
            except OSError:
                body = {}
            if isinstance(body, dict) and body.get("status") == "store_unavailable":
                break
            time.sleep(0.2)
        assert isinstance(body, dict) and body["status"] == "store_unavailable" and "not-a-folder" in body["detail"]
        time.sleep(1.0)  # a few tries more: each is the same problem, logged once
        server.terminate()
        output = server.output()
    assert "Traceback" not in output
    [problem] = [line for line in _lines(output) if line["message"].startswith("not ready: ")]
    assert problem["level"] == "ERROR" and "not-a-folder" in problem["message"]
