"""The retention loop in the service (issue 16): A/B variants and messages per language in the answer,
`POST /v1/outcomes`, `GET /v1/retention`, and alerts delivered by webhook, none lost across a restart."""

from __future__ import annotations

import json
import re
import time

import pytest

from reason_classifier.errors import ConfigError
from reason_classifier.service import ServiceSettings, create_app
from service_helpers import running
from webhook_receiver import Receiver, free_port

SECRET = "whsec_service_test_secret"
TEAMS = ("billing", "customer_success", "engineering", "growth", "product", "sales", "support")
SUPPORT = "Nobody from support ever answered my tickets"
EXPERIMENT = """
default_language: en
offers:
  none: {kind: none}
  downgrade: {kind: downgrade, message: {en: Take a smaller plan, de: Nehmen Sie einen kleineren Tarif}}
  discount: {kind: discount, message: {en: 20% off, de: 20 % Rabatt}}
experiments:
  price:
    control: downgrade
    variants:
      downgrade: {offer: downgrade}
      discount: {offer: discount}
      holdout: {offer: none}
rules:
  - {category: pricing, experiment: price}
  - {category: other, offer: none, alert: false}
"""


def webhooks(url: str) -> dict:
    return {team: {"url": url, "secret": SECRET} for team in TEAMS}


def wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def alerts_metric(client, state: str) -> float:
    text = client.get("/metrics").text
    found = re.search(rf'^reason_classifier_alerts\{{state="{state}"\}} (\S+)$', text, re.MULTILINE)
    assert found, text[-2000:]
    return float(found.group(1))


def test_a_customer_keeps_their_variant_and_reads_the_offer_in_their_language(classifier, tmp_path):
    offers = tmp_path / "offers.yaml"
    offers.write_text(EXPERIMENT, encoding="utf-8")
    with running(classifier, offers=offers, store=str(tmp_path / "store.db")) as client:
        answers = {}
        for i in range(30):
            body = {"text": "Zu teuer für unser kleines Team", "customer_id": f"c-{i}", "language": "de"}
            answers[i] = client.post("/v1/classify", json=body).json()
        again = client.post("/v1/classify", json={"text": "Too expensive", "customer_id": "c-3"}).json()
        anonymous = client.post("/v1/classify", json={"text": "Too expensive"}).json()
        client.app.state.service.store.flush()
        rows = client.app.state.service.store.rows()
    variants = {a["offer"]["variant"] for a in answers.values()}
    assert variants == {"downgrade", "discount", "holdout"}
    assert {a["offer"]["experiment"] for a in answers.values()} == {"price"}
    by_variant = {a["offer"]["variant"]: a["offer"] for a in answers.values()}
    assert by_variant["discount"]["message"] == "20 % Rabatt" and by_variant["downgrade"]["id"] == "downgrade"
    assert by_variant["holdout"] == {
        "id": "none",
        "kind": "none",
        "message": "",
        "experiment": "price",
        "variant": "holdout",
    }
    assert again["offer"]["variant"] == answers[3]["offer"]["variant"] and again["offer"]["message"] in (
        "20% off",
        "Take a smaller plan",
        "",
    )
    assert anonymous["offer"]["experiment"] is None and anonymous["offer"]["id"] == "downgrade"  # the control
    stored = {r["customer_id"]: r for r in rows}
    assert stored["c-3"]["variant"] == answers[3]["offer"]["variant"] and stored["c-3"]["experiment"] == "price"
    assert stored["c-3"]["offer_kind"] == answers[3]["offer"]["kind"]


def test_outcomes_are_recorded_once_validated_and_counted_in_retention(classifier, tmp_path):
    with running(classifier, store=str(tmp_path / "store.db")) as client:
        first = client.post("/v1/classify", json={"text": "Too expensive", "customer_id": "c-1", "mrr": 80}).json()
        batch = client.post(
            "/v1/classify/batch", json={"items": [{"text": "too expensive", "customer_id": "c-2", "mrr": 20}] * 2}
        ).json()
        post = lambda body: client.post("/v1/outcomes", json=body)  # noqa: E731
        created = post({"request_id": first["request_id"], "outcome": "accepted", "mrr_kept": 64})
        assert created.status_code == 201 and created.json()["created"] is True
        same = post({"request_id": first["request_id"], "outcome": "accepted", "mrr_kept": 64})
        assert same.status_code == 200 and same.json()["created"] is False
        conflict = post({"request_id": first["request_id"], "outcome": "cancelled"})
        assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "outcome_conflict"
        assert "already has the outcome 'accepted'" in conflict.json()["error"]["message"]
        by_customer = post({"customer_id": "c-2", "outcome": "paused"})
        assert by_customer.status_code == 201 and by_customer.json()["item"] == 1  # c-2's latest answer
        assert post({"request_id": batch["request_id"], "item": 0, "outcome": "declined"}).status_code == 201
        unknown = post({"request_id": "no-such-request", "outcome": "accepted"})
        assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "request_id"
        assert post({"customer_id": "nobody", "outcome": "accepted"}).status_code == 404
        for bad, field in (
            ({"request_id": "x", "outcome": "stayed"}, "outcome"),
            ({"request_id": "x", "outcome": "accepted", "mrr_kept": -1}, "mrr_kept"),
            ({"outcome": "accepted"}, None),
            ({"request_id": "x", "customer_id": "c-1", "outcome": "accepted"}, None),
            ({"request_id": "x", "outcome": "accepted", "extra": 1}, "extra"),
        ):
            response = post(bad)
            assert response.status_code == 422, (bad, response.json())
            if field:
                assert response.json()["error"]["field"] == field
        report = client.get("/v1/retention", params={"by": "plan", "horizon_months": 6})
        assert report.status_code == 200, report.json()
        summary = report.json()["summary"]
        assert (summary["answers_reported"], summary["outcomes_matched"], summary["accepted"]) == (3, 3, 1)
        assert summary["deflections"] == 2 and summary["saved_mrr"] == 64 + 20 and summary["saved_revenue"] == 6 * 84
        assert "c-1" not in report.text and "Too expensive" not in report.text  # numbers only
        assert client.get("/v1/retention", params={"by": "customer_id"}).status_code == 422
        assert client.get("/v1/retention", params={"horizon_months": 0}).status_code == 422
        assert client.get("/v1/retention", params={"since": "1686-01-01"}).status_code == 422
    with running(classifier) as client:
        assert client.get("/v1/retention").status_code == 404
        assert client.post("/v1/outcomes", json={"request_id": "x", "outcome": "accepted"}).status_code == 404


def test_every_alert_arrives_signed_once_the_receiver_recovers_none_lost_across_a_restart(classifier, tmp_path):
    """The acceptance test of issue 16: down, then 500, then slow, with a restart of the service in between."""
    receiver = Receiver(SECRET, port=free_port())  # down
    settings = {
        "store": str(tmp_path / "store.db"),
        "webhooks": webhooks(receiver.url),
        "webhook_retry": {"timeout_seconds": 0.5, "first_delay_seconds": 0.05, "max_delay_seconds": 0.5},
    }
    sent: list[str] = []
    with running(classifier, **settings) as client:
        for i in range(12):
            answer = client.post("/v1/classify", json={"text": SUPPORT, "customer_id": f"c-{i}", "mrr": 10 + i}).json()
            assert answer["alert"] is not None
            sent.append(answer["request_id"])
        wait_for(lambda: alerts_metric(client, "retrying") == 12)
        receiver.status = 500
        receiver.start()
        wait_for(lambda: receiver.attempts >= 12)
        assert alerts_metric(client, "delivered") == 0
    # the service is stopped with every alert undelivered; a new process on the same store resumes them
    receiver.status, receiver.delay_seconds = 200, 2.0  # slower than the timeout
    with running(classifier, **settings) as client:
        for i in range(12, 20):
            sent.append(
                client.post("/v1/classify", json={"text": SUPPORT, "customer_id": f"c-{i}"}).json()["request_id"]
            )
        wait_for(lambda: receiver.attempts >= 30)
        receiver.delay_seconds = 0.0
        wait_for(lambda: alerts_metric(client, "delivered") == 20)
        assert alerts_metric(client, "dead") == 0 and alerts_metric(client, "retrying") == 0
    receiver.stop()
    delivered = {json.loads(r.body)["request_id"]: r for r in receiver.received}
    assert sorted(delivered) == sorted(sent)  # every alert, each verified by the receiver with the secret
    body = json.loads(delivered[sent[0]].body)
    assert body["customer_id"] == "c-0" and body["mrr"] == 10 and body["category"] == "support"
    assert body["offer"]["id"] == "senior_support" and "text" not in body
    assert len(set(receiver.keys())) == 20  # one idempotency key per alert, whatever the retries


def test_a_receiver_that_never_recovers_ends_in_the_dead_letter_counted_and_replayable(classifier, tmp_path):
    receiver = Receiver(SECRET, status=500).start()
    settings = {
        "store": str(tmp_path / "store.db"),
        "webhooks": webhooks(receiver.url),
        "webhook_retry": {"timeout_seconds": 0.5, "first_delay_seconds": 0.05, "max_delay_seconds": 0.2,
                          "give_up_after_seconds": 1.0},
    }  # fmt: skip
    try:
        with running(classifier, **settings) as client:
            for i in range(3):
                client.post("/v1/classify", json={"text": SUPPORT, "customer_id": f"c-{i}"})
            wait_for(lambda: alerts_metric(client, "dead") == 3)
            dead = client.get("/v1/alerts/dead").json()["alerts"]
            assert len(dead) == 3 and all(d["last_error"] == "HTTP 500" and d["team"] == "support" for d in dead)
            assert "c-0" not in json.dumps(dead)
            receiver.status = 200
            replayed = client.post("/v1/alerts/replay", json={"alert_ids": [dead[0]["alert_id"]]}).json()
            assert replayed == {"replayed": 1}
            wait_for(lambda: alerts_metric(client, "delivered") == 1)
            assert client.post("/v1/alerts/replay", json={}).json() == {"replayed": 2}
            wait_for(lambda: alerts_metric(client, "delivered") == 3)
            assert client.post("/v1/alerts/replay", json={"alert_ids": "all"}).status_code == 422
    finally:
        receiver.stop()


def test_webhook_settings_are_checked_at_start_up(classifier, tmp_path):
    with pytest.raises(ConfigError, match="webhooks: alerts are delivered from the store"):
        ServiceSettings.load(webhooks=webhooks("http://127.0.0.1:9/"))
    with pytest.raises(ConfigError, match=r"webhooks\.support\.url: 'ftp://x' is not an http"):
        ServiceSettings.load(store=str(tmp_path / "s.db"), webhooks={"support": {"url": "ftp://x", "secret": SECRET}})
    with pytest.raises(ConfigError, match=r"webhooks\.support\.secret: .*at least 16 characters"):
        ServiceSettings.load(
            store=str(tmp_path / "s.db"), webhooks={"support": {"url": "http://x.test", "secret": "s"}}
        )
    with pytest.raises(ConfigError, match=r"webhook_retry\.timeout_seconds"):
        ServiceSettings.load(store=str(tmp_path / "s.db"), webhook_retry={"timeout_seconds": 0})
    settings = ServiceSettings.load(
        store=str(tmp_path / "s.db"), webhooks={"suport": {"url": "http://x.test", "secret": SECRET}}
    )
    app = create_app(settings, classifier=classifier)
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        wait_for(lambda: client.get("/readyz").json().get("status") != "loading")
        ready = client.get("/readyz")
        assert (
            ready.status_code == 503 and "webhooks.suport: no rule or taxonomy owner alerts team 'suport'" in ready.text
        )
