"""Recording outcomes beside their answers (issue 16): by request id or customer, once, idempotent repeats."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, func, insert, select

from reason_classifier.answer_store_schema import classified_answers, create_tables, offer_outcomes
from reason_classifier.retention import OutcomeKind
from reason_classifier.retention.recording import ConflictingOutcome, UnknownAnswer, record_outcome


def answer(request_id: str, item: int, customer_id: str | None, day: int) -> dict:
    return {
        "created_at": datetime(2026, 6, day, tzinfo=UTC),
        "request_id": request_id,
        "item": item,
        "text": "too expensive",
        "customer_id": customer_id,
        "category": "pricing",
        "abstained": False,
        "model_version": "test",
    }


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    create_tables(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(classified_answers),
            [answer("r1", 0, "c1", 1), answer("r2", 0, "c2", 2), answer("r2", 1, "c3", 2), answer("r3", 0, "c1", 5)],
        )
    return engine


def test_an_outcome_is_stored_once_and_a_repeat_of_it_is_harmless(engine):
    first = record_outcome(engine, OutcomeKind.accepted, request_id="r2", item=1, mrr_kept=40.0)
    assert (first.request_id, first.item, first.customer_id, first.created) == ("r2", 1, "c3", True)
    again = record_outcome(engine, OutcomeKind.accepted, request_id="r2", item=1, mrr_kept=40.0)
    assert not again.created and again.recorded_at == first.recorded_at
    with pytest.raises(ConflictingOutcome, match="already has the outcome 'accepted' with mrr_kept 40.0") as error:
        record_outcome(engine, OutcomeKind.cancelled, request_id="r2", item=1)
    assert error.value.existing.outcome is OutcomeKind.accepted
    with pytest.raises(ConflictingOutcome):
        record_outcome(engine, OutcomeKind.accepted, request_id="r2", item=1, mrr_kept=41.0)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(offer_outcomes)).scalar_one() == 1


def test_a_customer_id_names_their_latest_answer_and_unknown_ones_are_refused(engine):
    recorded = record_outcome(engine, OutcomeKind.paused, customer_id="c1")
    assert (recorded.request_id, recorded.item) == ("r3", 0)  # c1 answered on June 1 and June 5
    with pytest.raises(UnknownAnswer, match=r"no stored answer has this request_id \(item 0\)"):
        record_outcome(engine, OutcomeKind.accepted, request_id="nope")
    with pytest.raises(UnknownAnswer, match=r"this request_id \(item 3\)"):
        record_outcome(engine, OutcomeKind.accepted, request_id="r2", item=3)
    with pytest.raises(UnknownAnswer, match="no stored answer has this customer_id"):
        record_outcome(engine, OutcomeKind.accepted, customer_id="c-unknown")
    with pytest.raises(ValueError, match="by request_id or by customer_id"):
        record_outcome(engine, OutcomeKind.accepted, request_id="r1", customer_id="c1")


def test_an_older_store_gets_the_new_columns_and_tables(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE classified_answers (id INTEGER PRIMARY KEY, created_at DATETIME NOT NULL, request_id TEXT "
            "NOT NULL, item INT NOT NULL, text TEXT NOT NULL, category TEXT NOT NULL, abstained BOOLEAN NOT NULL, "
            "model_version TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO classified_answers VALUES (1, '2026-06-01 00:00:00', 'old', 0, 'x', 'pricing', 0, 'v1')"
        )
    engine = create_engine(f"sqlite:///{path}")
    create_tables(engine)
    create_tables(engine)  # twice: nothing left to add
    with engine.connect() as connection:
        row = connection.execute(select(classified_answers)).one()
    assert row.request_id == "old" and row.variant is None and row.offer_kind is None
    assert record_outcome(engine, OutcomeKind.declined, request_id="old").created
