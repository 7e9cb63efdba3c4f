"""Trends from the service's store in PostgreSQL (a throwaway cluster; skips where PostgreSQL is not installed)."""

from __future__ import annotations

from reason_classifier.trends import TrendOptions, compute_trends
from tests.test_service_postgres import postgres_url  # noqa: F401 - the fixture
from tests.test_trends import _store_rows, generated


def test_postgresql_store_gives_the_numbers_of_the_same_rows_in_sqlite(postgres_url, tmp_path):  # noqa: F811
    from reason_classifier.service.store import AnswerStore

    data = generated(120, seed=5)
    for i, target in enumerate((postgres_url, str(tmp_path / "answers.db"))):
        store = AnswerStore(target, tmp_path / f"spool-{i}")
        store.add(_store_rows(data))
        store.flush()
        store.close()
    options = TrendOptions(by=("plan", "metadata.contract"), period="week", timezone="America/New_York")
    from_postgres = compute_trends(postgres_url, options).document
    from_sqlite = compute_trends(tmp_path / "answers.db", options).document
    assert from_postgres.rows == from_sqlite.rows and from_postgres.summary.rows_reported == 120
    assert compute_trends(postgres_url.replace("postgres@", "postgres:secret@"), options).document.source == (
        postgres_url.replace("postgres@", "postgres:***@")
    )  # no password in reports


def test_postgresql_a_stored_lone_surrogate_in_metadata_is_tolerated(postgres_url, tmp_path):  # noqa: F811
    """Observed: one metadata value with a lone surrogate made every `by=metadata.KEY` report fail."""
    from reason_classifier.service.store import AnswerStore

    store = AnswerStore(postgres_url, tmp_path / "spool")
    store.add(_store_rows(generated(20, seed=2)))
    store.flush()
    with store.engine.begin() as connection:  # as an older version stored it (JSON escapes, not cleaned)
        connection.exec_driver_sql("""UPDATE classified_answers SET metadata = '{"contract": "an\\ud800nual"}'
                                      WHERE id = (SELECT min(id) FROM classified_answers)""")
    store.close()
    document = compute_trends(postgres_url, TrendOptions(by=("metadata.contract",))).document
    assert "an\ufffdnual" in {r.segment_value for r in document.rows}
