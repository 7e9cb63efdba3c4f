"""The stored answers' table is defined once (reason_classifier/answer_store_schema.py): the service writes
rows derived from its response model, and the trends read the same table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from reason_classifier.answer_store_schema import classified_answers
from reason_classifier.errors import SourceNotFound, SourceUnreadable
from reason_classifier.service import ServiceSettings, create_app
from reason_classifier.service.models import ClassifyRequest, ClassifyResponse, stored_row
from reason_classifier.service.store import AnswerStore
from reason_classifier.trends.sources import open_source

ANSWER = {
    "category": "pricing",
    "sub_reason": "payment_failed",
    "confidence": 0.97,
    "sub_reason_confidence": 0.9,
    "scores": {"product": 0.01, "pricing": 0.97, "support": 0.01, "market": 0.005, "other": 0.005},
    "abstained": False,
    "language": "en",
    "offer": {
        "id": "fix_payment",
        "kind": "fix_payment",
        "message": "Update your card.",
        "experiment": "payment_nudge",
        "variant": "email",
    },
    "alert": {"team": "billing", "category": "pricing", "sub_reason": "payment_failed"}
    | {"customer_id": "c-1", "plan": "pro", "mrr": 49.0},
    "actionability": {"voluntary": False, "influenceable": True},
    "model_version": "m@1",
    "request_id": "r-1",
}


def test_a_stored_row_has_every_column_of_the_table_from_the_request_and_the_response(tmp_path):
    request = ClassifyRequest(text="card declined", customer_id="c-1", plan="pro", mrr=49, language="en")
    answer = ClassifyResponse.model_validate(ANSWER)
    created = datetime(2026, 3, 1, tzinfo=UTC)
    row = stored_row(request, answer, 2, created)
    assert set(row) == {c.name for c in classified_answers.columns} - {"id"}
    assert row | {"scores": None} == {
        "created_at": created,
        "request_id": "r-1",
        "item": 2,
        "text": "card declined",
        "customer_id": "c-1",
        "plan": "pro",
        "mrr": 49.0,
        "language_given": "en",
        "metadata": None,
        "category": "pricing",
        "sub_reason": "payment_failed",
        "confidence": 0.97,
        "sub_reason_confidence": 0.9,
        "scores": None,
        "abstained": False,
        "language": "en",
        "offer_id": "fix_payment",
        "offer_kind": "fix_payment",
        "experiment": "payment_nudge",
        "variant": "email",
        "alert_team": "billing",
        "model_version": "m@1",
    }
    store = AnswerStore(str(tmp_path / "answers.db"))
    store.add([row])
    assert store.flush()
    [written] = store.rows()
    store.close()
    assert written["scores"] == ANSWER["scores"] and written["offer_id"] == "fix_payment"
    assert (written["offer_kind"], written["experiment"], written["variant"]) == (
        "fix_payment",
        "payment_nudge",
        "email",
    )
    source = open_source(tmp_path / "answers.db")
    try:
        assert source.columns == [c.name for c in classified_answers.columns]
    finally:
        source.close()


def test_a_missing_or_unreadable_store_is_a_typed_error(tmp_path):
    with pytest.raises(SourceNotFound):
        open_source(tmp_path / "never-written.db")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database, only a file with the suffix of one" * 100)
    with pytest.raises(SourceUnreadable, match="cannot open the store"):
        open_source(garbage)


def test_trends_say_nothing_was_stored_for_a_missing_store_and_503_for_an_unreadable_one(tmp_path):
    """The service knew a missing store by the words "no such file" in the error; now by its type."""
    missing = create_app(ServiceSettings.load(store=str(tmp_path / "never-written.db")))
    response = TestClient(missing).get("/v1/trends")  # no lifespan: the store is never opened, so never created
    assert (response.status_code, response.json()["error"]["code"]) == (404, "no_store")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"no such file" * 1000)  # the words the service matched before, inside a file that exists
    response = TestClient(create_app(ServiceSettings.load(store=str(garbage)))).get("/v1/trends")
    assert (response.status_code, response.json()["error"]["code"]) == (503, "store_error")
