"""The HTTP service: every endpoint, every bad input, API keys, offers, concurrency and SQLite storage."""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from reason_classifier.service import ServiceSettings, create_app
from reason_classifier.service.settings import SettingsError
from service_helpers import running

PAYMENT_FAILED = "My card was declined and the payment failed, I didn't mean to cancel"
TOO_EXPENSIVE = "It's simply too expensive for us, not worth the money"


@pytest.fixture(scope="module")
def client(classifier):
    with running(classifier) as client:
        yield client


def assert_error(response, status: int, code: str, field: str | None = None, limit=None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["field"] == field
    assert error["limit"] == limit
    assert error["request_id"] == response.headers["x-request-id"]
    assert error["message"]
    return error


# --- endpoints -------------------------------------------------------------------------------------------------


def test_classify_answers_with_reason_offer_alert_and_actionability(client, classifier):
    response = client.post(
        "/v1/classify", json={"text": PAYMENT_FAILED, "customer_id": "c-7", "plan": "pro", "mrr": 49.0}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["category"], body["sub_reason"]) == ("pricing", "payment_failed")
    assert body["offer"]["kind"] == "fix_payment"  # involuntary: fix the payment, never a discount
    assert body["alert"] == {
        "team": "billing",
        "category": "pricing",
        "sub_reason": "payment_failed",
        "customer_id": "c-7",
        "plan": "pro",
        "mrr": 49.0,
    }
    assert body["actionability"] == {"voluntary": False, "influenceable": True}
    assert set(body["scores"]) == {"product", "pricing", "support", "market", "other"}
    assert abs(sum(body["scores"].values()) - 1) < 1e-3
    assert 0 <= body["confidence"] <= 1 and body["abstained"] is False
    assert body["language"] == "en"
    assert body["model_version"] == classifier.version
    assert body["request_id"] == response.headers["x-request-id"]


def test_offer_depends_on_mrr_and_language_hint_is_kept(client):
    small = client.post("/v1/classify", json={"text": TOO_EXPENSIVE, "mrr": 20}).json()
    large = client.post("/v1/classify", json={"text": TOO_EXPENSIVE, "mrr": 900, "language": "en-GB"}).json()
    unknown = client.post("/v1/classify", json={"text": TOO_EXPENSIVE}).json()
    assert small["offer"]["id"] == "downgrade" and unknown["offer"]["id"] == "downgrade"
    assert large["offer"] == {
        "id": "discount_30_annual",
        "kind": "discount",
        "message": "Switch to yearly billing and get 30% off your plan for the whole year.",  # en-GB: the en message
        "experiment": None,
        "variant": None,
    }
    assert large["language"] == "en-GB"


def test_unclear_answer_abstains_without_alert(client):
    body = client.post("/v1/classify", json={"text": "asdf qwerty"}).json()
    assert body["category"] == "other"
    assert body["offer"]["kind"] == "none"
    assert body["alert"] is None


def test_batch_keeps_order(client):
    texts = [PAYMENT_FAILED, "support never answered my tickets", TOO_EXPENSIVE, "Za drogo jak na nasz budżet"]
    response = client.post("/v1/classify/batch", json={"items": [{"text": t} for t in texts]})
    assert response.status_code == 200
    body = response.json()
    assert [item["category"] for item in body["items"]] == ["pricing", "support", "pricing", "pricing"]
    assert body["items"][0]["sub_reason"] == "payment_failed"
    assert body["items"][3]["language"] == "pl"
    assert {item["request_id"] for item in body["items"]} == {body["request_id"]}


def test_taxonomy(client):
    body = client.get("/v1/taxonomy").json()
    assert list(body["categories"]) == ["product", "pricing", "support", "market", "other"]
    payment = body["categories"]["pricing"]["sub_reasons"]["payment_failed"]
    assert payment["owner"] == "billing" and payment["voluntary"] is False
    assert "examples" not in payment


def test_health_ready_metrics_and_docs(client, classifier):
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model_version"] == classifier.version
    health = {"status": "alive", "model_version": ready["model_version"], "detail": None, "store": None}
    assert client.get("/healthz").json() == health  # was model_version null with the model loaded
    client.post("/v1/classify", json={"text": TOO_EXPENSIVE})
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'reason_classifier_http_requests_total{method="POST",route="/v1/classify",status="200"}' in text
    assert 'reason_classifier_http_request_duration_seconds_bucket{le="0.025",route="/v1/classify"}' in text
    assert 'reason_classifier_predictions_total{category="pricing"}' in text
    assert "reason_classifier_model_ready 1.0" in text
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/v1/classify", "/v1/classify/batch", "/v1/taxonomy", "/healthz", "/readyz", "/metrics"} <= set(
        schema["paths"]
    )


def test_request_id_is_taken_from_the_caller_when_sane(client):
    assert client.get("/healthz", headers={"x-request-id": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert client.get("/healthz", headers={"x-request-id": "bad id\n"}).headers["x-request-id"] != "bad id\n"


# --- bad input: always a 4xx naming the field and the limit -----------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code", "field", "limit"),
    [
        ({"text": ""}, 422, "empty_text", "text", None),
        ({"text": " \n\t "}, 422, "empty_text", "text", None),
        ({"text": "x" * 5001}, 422, "text_too_long", "text", 5000),
        ({"text": 42}, 422, "invalid_request", "text", None),
        ({"text": None}, 422, "invalid_request", "text", None),
        ({"text": ["a"]}, 422, "invalid_request", "text", None),
        ({}, 422, "invalid_request", "text", None),
        ([], 422, "invalid_request", "body", None),
        ({"text": "ok", "mrr": -5}, 422, "invalid_request", "mrr", 0),
        ({"text": "ok", "mrr": "lots"}, 422, "invalid_request", "mrr", None),
        ({"text": "ok", "plan": "p" * 101}, 422, "invalid_request", "plan", 100),
        ({"text": "ok", "language": "English!"}, 422, "invalid_request", "language", None),
        ({"text": "ok", "metadata": "not an object"}, 422, "invalid_request", "metadata", None),
        ({"text": "ok", "unknown": 1}, 422, "invalid_request", "unknown", None),
    ],
)
def test_bad_classify_input(client, body, status, code, field, limit):
    assert_error(client.post("/v1/classify", json=body), status, code, field, limit)


def test_invalid_json_non_finite_and_non_json_bodies(client):
    headers = {"content-type": "application/json"}
    assert_error(
        client.post("/v1/classify", content=b'{"text": "unterminated', headers=headers), 400, "invalid_json", "body"
    )
    assert_error(client.post("/v1/classify", content=b"\xff\xfe\x00", headers=headers), 400, "invalid_json", "body")
    assert_error(
        client.post("/v1/classify", content=b'{"text": "ok", "mrr": NaN}', headers=headers),
        422,
        "invalid_request",
        "mrr",
    )
    form = client.post(
        "/v1/classify", content=b"text=hello", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert form.status_code == 422
    assert_error(client.post("/v1/classify"), 422, "invalid_request", "body")


def test_bad_batches(client):
    assert_error(client.post("/v1/classify/batch", json={"items": []}), 422, "invalid_request", "items", 1)
    assert_error(
        client.post("/v1/classify/batch", json={"items": [{"text": "ok"}] * 101}), 422, "batch_too_large", "items", 100
    )
    assert_error(
        client.post("/v1/classify/batch", json={"items": [{"text": "ok"}, {"text": " "}]}),
        422,
        "empty_text",
        "items.1.text",
    )
    assert_error(
        client.post("/v1/classify/batch", json={"items": [{"text": "ok"}, {"text": 3}]}),
        422,
        "invalid_request",
        "items.1.text",
    )
    assert_error(
        client.post("/v1/classify/batch", json={"items": [{"text": "y" * 5001}]}),
        422,
        "text_too_long",
        "items.0.text",
        5000,
    )
    assert_error(client.post("/v1/classify/batch", json={"items": "nope"}), 422, "invalid_request", "items")


def test_a_big_batch_is_counted_before_its_items_are_validated_and_parsed_off_the_loop(client, monkeypatch):
    """Observed: 24 batches of 60,000 tiny items pushed normal requests' p50 from 21 ms to 2.3 s: every item was
    validated, on the event loop, before the size check."""
    import reason_classifier.service.body as body_module

    parsed_in: list[str] = []
    original = body_module.parse_json
    monkeypatch.setattr(
        body_module, "parse_json", lambda body: parsed_in.append(threading.current_thread().name) or original(body)
    )
    huge = json.dumps({"items": [{"text": 3}] * 60_000}).encode()
    assert len(huge) < 1_048_576
    error = assert_error(
        client.post("/v1/classify/batch", content=huge, headers={"content-type": "application/json"}),
        422,
        "batch_too_large",
        "items",
        100,
    )  # not items.0.text: nothing was validated
    assert error["message"].startswith("60000 items")
    assert parsed_in and all(name.startswith("asyncio_") for name in parsed_in)  # a worker thread, not the loop
    small = client.post("/v1/classify/batch", json={"items": [{"text": "too expensive"}]})
    assert small.status_code == 200 and not parsed_in[-1].startswith("asyncio_")  # small bodies skip the thread hop


def test_oversized_body_is_refused_before_parsing(client):
    declared = client.post(
        "/v1/classify", content=b"{" + b" " * 1_100_000 + b"}", headers={"content-type": "application/json"}
    )
    assert_error(declared, 413, "body_too_large", "body", 1_048_576)

    def chunks():  # no Content-Length: the limit is counted while reading
        for _ in range(40):
            yield b" " * 32_768

    streamed = client.post("/v1/classify", content=chunks(), headers={"content-type": "application/json"})
    assert_error(streamed, 413, "body_too_large", "body", 1_048_576)


def test_lone_surrogate_is_refused_naming_the_field(client):
    headers = {"content-type": "application/json"}
    one = client.post("/v1/classify", content=b'{"text": "\\ud800 too expensive"}', headers=headers)
    assert "surrogate" in assert_error(one, 422, "invalid_text", "text")["message"]
    batch = client.post(
        "/v1/classify/batch", content=b'{"items": [{"text": "ok"}, {"text": "x \\udfff"}]}', headers=headers
    )
    assert_error(batch, 422, "invalid_text", "items.1.text")
    for field in ("customer_id", "plan"):
        body = b'{"text": "too expensive", "%s": "c-\\ud83d"}' % field.encode()
        assert_error(client.post("/v1/classify", content=body, headers=headers), 422, "invalid_request", field)
    paired = client.post("/v1/classify", content=b'{"text": "too expensive \\ud83d\\ude00"}', headers=headers)
    assert paired.status_code == 200  # an escaped pair is one valid character (an emoji)


def test_bad_answers_never_fail_their_neighbours(client):
    """Observed: lone surrogates mixed into concurrent traffic made the model raise for its whole micro-batch."""
    headers = {"content-type": "application/json"}

    def call(i: int) -> tuple[bool, int]:
        if i % 5 == 0:
            return False, client.post(
                "/v1/classify", content=b'{"text": "\\ud800 too expensive"}', headers=headers
            ).status_code
        return True, client.post("/v1/classify", json={"text": f"too expensive for us {i}"}).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(call, range(150)))
    assert [status for normal, status in results if normal] == [200] * 120
    assert {status for normal, status in results if not normal} == {422}


def test_a_model_failure_fails_only_the_request_whose_answer_caused_it(classifier, monkeypatch):
    import asyncio

    from reason_classifier.service.predictor import ItemFailed, Predictor

    calls: list[int] = []

    def fragile(texts: list[str]):
        calls.append(len(texts))
        if any("poison" in t for t in texts):
            raise ValueError("cannot encode")
        return classifier.predict(texts)

    async def scenario():
        predictor = Predictor(fragile)
        predictor.start()
        try:
            return await asyncio.gather(
                predictor.predict(["too expensive"], 5),
                predictor.predict(["ok", "poison here", "ok"], 5),
                predictor.predict(["support never answered", "too slow"], 5),
                return_exceptions=True,
            )
        finally:
            await predictor.stop()

    first, second, third = asyncio.run(scenario())
    assert calls[0] == 6  # the three requests were one call to the model
    assert [p.category for p in first] == ["pricing"] and len(third) == 2
    assert isinstance(second, ItemFailed) and second.index == 1

    with running(classifier) as client:
        monkeypatch.setattr(client.app.state.service.predictor, "_predict", fragile)
        error = assert_error(
            client.post("/v1/classify/batch", json={"items": [{"text": "ok"}, {"text": "poison"}]}),
            503,
            "model_error",
            "items.1.text",
        )
        assert "poison" not in error["message"]


def test_unknown_route_and_method(client):
    assert_error(client.get("/v1/nothing"), 404, "not_found")
    assert_error(client.get("/v1/classify"), 405, "method_not_allowed")


def test_limits_follow_settings(classifier):
    with running(classifier, max_chars=20, max_batch_items=2, max_body_bytes=2048) as client:
        assert_error(client.post("/v1/classify", json={"text": "x" * 21}), 422, "text_too_long", "text", 20)
        assert client.post("/v1/classify", json={"text": "too expensive"}).status_code == 200
        assert_error(
            client.post("/v1/classify/batch", json={"items": [{"text": "a"}] * 3}), 422, "batch_too_large", "items", 2
        )
        assert_error(
            client.post("/v1/classify", json={"text": "ok", "metadata": {"k": "v" * 3000}}),
            413,
            "body_too_large",
            "body",
            2048,
        )


# --- the model failing or slow: 503 with a request id, and the log says why ---------------------------------------


def test_model_error_is_503_and_logged(classifier, caplog, monkeypatch):
    with running(classifier) as client:
        state = client.app.state.service

        def broken(texts):
            raise RuntimeError("encoder exploded")

        monkeypatch.setattr(state, "_predict", broken)
        monkeypatch.setattr(state.predictor, "_predict", broken)
        with caplog.at_level(logging.ERROR, logger="service"):
            response = client.post("/v1/classify", json={"text": "a private answer about my divorce"})
        error = assert_error(response, 503, "model_error", "text")
        assert any(
            error["request_id"] in r.getMessage() and "encoder exploded" in r.getMessage() for r in caplog.records
        )
        assert "divorce" not in caplog.text
        assert 'reason_classifier_model_errors_total{reason="error"} 1.0' in client.get("/metrics").text


def test_slow_model_times_out_with_503_instead_of_hanging(classifier, monkeypatch):
    with running(classifier, predict_timeout_seconds=0.2) as client:
        state = client.app.state.service
        monkeypatch.setattr(state.predictor, "_predict", lambda texts: time.sleep(1.0) or classifier.predict(texts))
        started = time.monotonic()
        assert_error(client.post("/v1/classify", json={"text": "too expensive"}), 503, "timeout")
        assert time.monotonic() - started < 0.9
        assert client.get("/healthz").status_code == 200  # the event loop was never blocked


def test_not_ready_until_the_model_is_loaded(classifier, monkeypatch):
    import reason_classifier.service.app as service_app

    gate = threading.Event()

    def slow_load(*args, **kwargs):
        gate.wait(10)
        return classifier

    monkeypatch.setattr(service_app.ReasonClassifier, "load", slow_load)
    with TestClient(create_app(ServiceSettings.load())) as client:
        try:
            assert client.get("/healthz").json()["model_version"] is None
            assert (client.get("/readyz").status_code, client.get("/readyz").json()["status"]) == (503, "loading")
            assert_error(client.post("/v1/classify", json={"text": "too expensive"}), 503, "not_ready")
        finally:
            gate.set()
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.post("/v1/classify", json={"text": "too expensive"}).status_code == 200


def test_failed_load_is_reported(tmp_path):
    with TestClient(create_app(ServiceSettings.load(model=str(tmp_path / "missing")))) as client:
        deadline = time.monotonic() + 10
        while client.get("/readyz").json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.01)
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "failed" and ready.json()["detail"]
        assert client.get("/healthz").status_code == 503
        assert_error(client.post("/v1/classify", json={"text": "too expensive"}), 503, "not_ready")


# --- access: API keys, CORS, no answer text in logs ----------------------------------------------------------------


def test_api_keys_guard_every_v1_route(classifier):
    with running(classifier, api_keys=["key-one", "key-two"]) as client:
        for method, path, body in (
            ("post", "/v1/classify", {"text": "too expensive"}),
            ("post", "/v1/classify/batch", {"items": [{"text": "too expensive"}]}),
            ("get", "/v1/taxonomy", None),
        ):
            call = getattr(client, method)
            kwargs = {"json": body} if body is not None else {}
            assert_error(call(path, **kwargs), 401, "unauthorized", "X-API-Key")
            assert_error(call(path, headers={"X-API-Key": "key-on"}, **kwargs), 401, "unauthorized", "X-API-Key")
            assert_error(call(path, headers={"X-API-Key": "wrong"}, **kwargs), 401, "unauthorized", "X-API-Key")
            assert call(path, headers={"X-API-Key": "key-two"}, **kwargs).status_code == 200
        for open_path in ("/healthz", "/readyz", "/metrics"):
            assert client.get(open_path).status_code == 200
        assert "APIKeyHeader" in json.dumps(client.get("/openapi.json").json()["components"]["securitySchemes"])


def test_api_key_header_name_is_a_setting(classifier):
    with running(classifier, api_keys=["s3cret"], api_key_header="Authorization-Key") as client:
        assert client.post("/v1/classify", json={"text": "too slow"}).status_code == 401
        assert (
            client.post("/v1/classify", json={"text": "too slow"}, headers={"Authorization-Key": "s3cret"}).status_code
            == 200
        )


def test_cors(classifier):
    with running(classifier, cors_origins=["https://app.example.com"]) as client:
        preflight = client.options(
            "/v1/classify",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-api-key",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
        other = client.post("/v1/classify", json={"text": "too slow"}, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_answer_text_is_logged_only_at_debug(classifier, caplog):
    secret = "my therapist said I should cancel"
    with running(classifier) as client, caplog.at_level(logging.INFO):
        client.post("/v1/classify", json={"text": secret})
        client.post("/v1/classify", json={"text": secret, "mrr": -1})
    assert secret not in caplog.text
    assert "/v1/classify 200" in caplog.text
    caplog.clear()
    with running(classifier, log_level="debug") as client, caplog.at_level(logging.DEBUG, logger="service"):
        client.post("/v1/classify", json={"text": secret})
    assert secret in caplog.text


# --- settings and offers --------------------------------------------------------------------------------------------


def test_settings_from_environment_and_file(tmp_path, monkeypatch):
    config = tmp_path / "service.yaml"
    config.write_text("max_batch_items: 7\napi_keys: [from-file]\nlog_level: warning\n", encoding="utf-8")
    monkeypatch.setenv("REASON_CLASSIFIER_SERVICE_MAX_BATCH_ITEMS", "9")
    settings = ServiceSettings.load(config)
    assert settings.max_batch_items == 9  # environment over file
    assert settings.api_keys == ["from-file"] and settings.log_level == "warning"
    assert ServiceSettings.load(config, max_batch_items=3).max_batch_items == 3
    monkeypatch.setenv("REASON_CLASSIFIER_SERVICE_PREDICT_TIMEOUT_SECONDS", "-1")
    with pytest.raises(SettingsError, match="predict_timeout_seconds"):
        ServiceSettings.load()


def test_library_settings_are_the_fallback(monkeypatch):
    monkeypatch.setenv("REASON_CLASSIFIER_MAX_CHARS", "123")
    assert ServiceSettings.load().library().max_chars == 123
    assert ServiceSettings.load(max_chars=50).library().max_chars == 50


def test_bad_offers_file_fails_at_creation(tmp_path):
    from reason_classifier.service.offers import OffersError

    offers = tmp_path / "offers.yaml"
    offers.write_text(
        "offers:\n  none: {kind: none}\nrules:\n  - sub_reason: too_expensive\n    offer: big_discount\n",
        encoding="utf-8",
    )
    with pytest.raises(OffersError, match="rules.0.offer: 'big_discount' is not in offers"):
        create_app(ServiceSettings.load(offers=offers))
    offers.write_text("offers:\n  none: {kind: refund}\n", encoding="utf-8")
    with pytest.raises(OffersError, match="offers.none.kind"):
        create_app(ServiceSettings.load(offers=offers))


def test_offers_naming_unknown_sub_reason_keep_service_unready(classifier, tmp_path):
    offers = tmp_path / "offers.yaml"
    offers.write_text(
        "offers:\n  none: {kind: none}\nrules:\n  - sub_reason: too_expensiv\n    offer: none\n", encoding="utf-8"
    )
    with TestClient(create_app(ServiceSettings.load(offers=offers), classifier=classifier)) as client:
        deadline = time.monotonic() + 10
        while client.get("/readyz").json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "too_expensiv" in client.get("/readyz").json()["detail"]


def test_custom_offers_by_plan_and_team(classifier, tmp_path):
    offers = tmp_path / "offers.yaml"
    offers.write_text(
        "offers:\n  none: {kind: none}\n  pause: {kind: pause, message: Pause it}\n"
        "rules:\n"
        "  - {category: pricing, plans: [Enterprise], offer: none, team: account_management}\n"
        "  - {category: pricing, offer: pause}\n",
        encoding="utf-8",
    )
    with running(classifier, offers=offers) as client:
        enterprise = client.post("/v1/classify", json={"text": TOO_EXPENSIVE, "plan": "enterprise"}).json()
        starter = client.post("/v1/classify", json={"text": TOO_EXPENSIVE, "plan": "starter"}).json()
    assert enterprise["offer"]["kind"] == "none" and enterprise["alert"]["team"] == "account_management"
    assert starter["offer"] == {
        "id": "pause",
        "kind": "pause",
        "message": "Pause it",
        "experiment": None,
        "variant": None,
    }
    assert starter["alert"]["team"] == "growth"  # the taxonomy's owner


def test_default_offers_cover_every_sub_reason(classifier):
    from reason_classifier.service.offers import OfferBook, OffersConfig
    from reason_classifier.service.settings import DEFAULT_OFFERS_PATH

    book = OfferBook(OffersConfig.load(DEFAULT_OFFERS_PATH), classifier.taxonomy)
    matched = {}
    for sub_reason in classifier.taxonomy.sub_reason_names:
        category = classifier.taxonomy.category_of(sub_reason)
        matched[sub_reason] = book.decide(category, sub_reason, False, None, None)
    assert matched["payment_failed"].offer.kind == "fix_payment"
    assert all(
        d.offer.kind != "discount" for s, d in matched.items() if not classifier.taxonomy.sub_reason(s).voluntary
    )
    assert matched["slow_response"].offer.kind == "escalation" and matched["slow_response"].alert_team == "support"
    assert matched["budget_cuts"].offer.kind == "pause"
    assert matched["too_complex"].offer.kind == "onboarding"
    assert matched["unclear"].alert_team is None


# --- concurrency and storage ----------------------------------------------------------------------------------------


def test_200_requests_from_20_threads_all_answered_and_stored(classifier, tmp_path):
    database = tmp_path / "answers.sqlite3"
    texts = [PAYMENT_FAILED, TOO_EXPENSIVE, "support never answered", "we closed the company", "太贵了"]
    with running(classifier, store=str(database)) as client:

        def call(i: int):
            response = client.post(
                "/v1/classify", json={"text": texts[i % len(texts)], "customer_id": f"c-{i}", "mrr": i}
            )
            return i, response.status_code, response.json()

        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(call, range(200)))
        store = client.app.state.service.store
        store.flush()
        rows = store.rows()
    assert [status for _, status, _ in results] == [200] * 200
    assert all(body["alert"] is None or body["alert"]["customer_id"] == f"c-{i}" for i, _, body in results)
    assert len({body["request_id"] for _, _, body in results}) == 200
    assert len(rows) == 200
    by_customer = {row["customer_id"]: row for row in rows}
    assert set(by_customer) == {f"c-{i}" for i in range(200)}
    for i, _, body in results:
        row = by_customer[f"c-{i}"]
        assert row["request_id"] == body["request_id"]
        assert row["text"] == texts[i % len(texts)] and row["mrr"] == i
        assert (row["category"], row["sub_reason"], row["offer_id"]) == (
            body["category"],
            body["sub_reason"],
            body["offer"]["id"],
        )


def test_sqlite_store_keeps_request_fields_prediction_and_version(classifier, tmp_path):
    database = tmp_path / "nested" / "answers.sqlite3"
    with running(classifier, store=str(database)) as client:
        one = client.post(
            "/v1/classify",
            json={
                "text": PAYMENT_FAILED,
                "customer_id": "c-1",
                "plan": "pro",
                "mrr": 12.5,
                "language": "en",
                "metadata": {"survey": "exit-v2", "tenure_months": 7},
            },
        ).json()
        batch = client.post("/v1/classify/batch", json={"items": [{"text": TOO_EXPENSIVE}, {"text": "太贵了"}]}).json()
        client.post("/v1/classify", json={"text": " "})  # refused: not stored
    with TestClient(create_app(ServiceSettings.load(store=str(database)), classifier=classifier)):
        pass  # reopening an existing database keeps its rows
    from reason_classifier.service.store import AnswerStore

    store = AnswerStore(str(database))
    rows = store.rows()
    store.close()
    assert len(rows) == 3
    first = rows[0]
    assert first["request_id"] == one["request_id"] and first["item"] == 0
    assert (first["text"], first["customer_id"], first["plan"], first["mrr"], first["language_given"]) == (
        PAYMENT_FAILED,
        "c-1",
        "pro",
        12.5,
        "en",
    )
    assert first["metadata"] == {"survey": "exit-v2", "tenure_months": 7}
    assert (first["category"], first["sub_reason"], first["offer_id"], first["alert_team"]) == (
        "pricing",
        "payment_failed",
        "fix_payment",
        "billing",
    )
    assert first["scores"] == one["scores"] and first["confidence"] == one["confidence"]
    assert first["model_version"] == one["model_version"] and first["created_at"] is not None
    assert [(r["request_id"], r["item"]) for r in rows[1:]] == [(batch["request_id"], 0), (batch["request_id"], 1)]


def test_store_url_forms():
    from reason_classifier.service.store import database_url

    assert database_url("postgresql://u:p@db/answers") == "postgresql+psycopg://u:p@db/answers"
    assert database_url("postgresql+psycopg://u@db/a") == "postgresql+psycopg://u@db/a"
    assert database_url("answers.db").startswith("sqlite:////") and database_url("answers.db").endswith("/answers.db")
    assert database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_a_dropped_table_is_created_again_and_no_row_is_lost(classifier, tmp_path, caplog):
    database = tmp_path / "answers.sqlite3"
    with running(classifier, store=str(database)) as client:
        store = client.app.state.service.store
        with store.engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE classified_answers")
        with caplog.at_level(logging.INFO, logger="service"):
            assert client.post("/v1/classify", json={"text": "secret text"}).status_code == 200
            assert store.flush()
        assert [row["text"] for row in store.rows()] == ["secret text"]
        assert "reason_classifier_store_pending_rows 0.0" in client.get("/metrics").text
    assert "secret text" not in caplog.text


def test_serve_command_runs_the_service(tmp_path, tiny_model):
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "service.yaml"
    config.write_text(f"api_keys: [k1]\nmodel: {tiny_model}\n", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "reason_classifier.cli.main", "serve", "--port", str(port), "--config", str(config)],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.1)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/classify",
            data=json.dumps({"text": TOO_EXPENSIVE}).encode(),
            headers={"content-type": "application/json", "x-api-key": "k1"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read())["category"] == "pricing"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_refuses_bad_settings(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    monkeypatch.setenv("REASON_CLASSIFIER_SERVICE_CONFIG", "")  # serve sets it for its workers; restored after the test

    from reason_classifier.cli.main import app

    config = tmp_path / "service.yaml"
    config.write_text("max_batch_items: zero\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code == 2
    assert "max_batch_items" in result.output


# --- several workers: one process with model threads ---------------------------------------------------------------


def test_model_threads_classify_at_the_same_time(classifier):
    import asyncio

    from reason_classifier.service.predictor import Predictor

    running_now, most = 0, 0
    lock = threading.Lock()

    def slow(texts):
        nonlocal running_now, most
        with lock:
            running_now += 1
            most = max(most, running_now)
        time.sleep(0.2)
        with lock:
            running_now -= 1
        return classifier.predict(texts)

    async def scenario(threads: int) -> None:
        predictor = Predictor(slow, threads=threads)
        predictor.start()

        async def later(i: int):
            await asyncio.sleep(0.05 * i)  # the second arrives while the first is being classified
            return await predictor.predict([f"too expensive {i}"], 5)

        try:
            await asyncio.gather(later(0), later(1))
        finally:
            await predictor.stop()

    asyncio.run(scenario(1))
    assert most == 1
    most = 0
    asyncio.run(scenario(2))
    assert most == 2


def test_serve_with_two_workers_is_one_process_ready_and_counted_as_a_whole(tiny_model):
    """Observed: with --workers 2, /readyz answered for whichever worker got it (ready while 300 of 398 requests got
    503 not_ready), and /metrics was per worker."""
    import psutil

    from service_process import ServiceProcess

    with ServiceProcess("--workers", "2", model=tiny_model) as server:
        assert psutil.Process(server.process.pid).children(recursive=True) == []
        statuses = []
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(
                pool.map(lambda i: server.request("POST", "/v1/classify", {"text": f"too slow {i}"})[0], range(100))
            )
        assert statuses == [200] * 100
        _, metrics = server.request("GET", "/metrics")
        assert 'reason_classifier_http_requests_total{method="POST",route="/v1/classify",status="200"} 100.0' in metrics
        server.terminate()
