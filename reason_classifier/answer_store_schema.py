"""The tables of the answer store, defined once: the service writes them and the trends read them.

SQLAlchemy Core tables on one `metadata`, so `metadata.create_all(engine)` makes every table a
store needs. A table that the service and a report both use belongs here, not in either of them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    text,
)

metadata = MetaData()

classified_answers = Table(
    "classified_answers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("request_id", String(64), nullable=False, index=True),
    Column("item", Integer, nullable=False, default=0),
    Column("text", Text, nullable=False),
    Column("customer_id", String(200)),
    Column("plan", String(100)),
    Column("mrr", Float),
    Column("language_given", String(35)),
    Column("metadata", JSON),
    Column("category", String(32), nullable=False, index=True),
    Column("sub_reason", String(64)),
    Column("confidence", Float),
    Column("sub_reason_confidence", Float),
    Column("scores", JSON),
    Column("abstained", Boolean, nullable=False),
    Column("language", String(35)),
    Column("offer_id", String(64)),
    Column("alert_team", String(64)),
    Column("model_version", String(128), nullable=False),
    Column("offer_kind", String(16)),
    Column("experiment", String(64)),
    Column("variant", String(64)),
)
"""One row per classified answer: what the caller sent (`language_given` is the caller's hint), what the
model answered, the offer shown and the team alerted; `(request_id, item)` names the answer in its request."""

REQUEST_ITEM = Index(
    "classified_answers_request_item", classified_answers.c.request_id, classified_answers.c.item, unique=True
)
"""One row per request id and item: what makes a replay or a retry store nothing twice."""

offer_outcomes = Table(
    "offer_outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("item", Integer, nullable=False, default=0),
    Column("customer_id", String(200)),
    Column("outcome", String(16), nullable=False),
    Column("mrr_kept", Float),
    UniqueConstraint("request_id", "item", name="offer_outcomes_one_per_answer"),
)
"""What the cancel flow reported after the offer of one answer (`request_id`, `item`): at most one outcome each."""

alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(64), nullable=False, unique=True),
    Column("team", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("retry_from", DateTime(timezone=True), nullable=False),
    Column("last_status", Integer),
    Column("last_error", String(300)),
    Column("delivered_at", DateTime(timezone=True)),
    Index("alert_outbox_due", "status", "next_attempt_at"),
)
"""Alerts to deliver, written in the same transaction as their answer: `pending` until delivered or `dead`.
`next_attempt_at` is when a dispatcher may take it (a claim moves it past the attempt, a lease), and
`retry_from` where the retry horizon starts (the alert's time, or its replay's)."""


def create_tables(bind: Any) -> None:
    """Create the tables a store needs, and add the columns a store made by an older version lacks (all
    nullable, so its rows stay as they were). `bind`: an engine, or a connection inside a transaction."""
    from sqlalchemy.engine import Engine

    if isinstance(bind, Engine):
        with bind.begin() as connection:
            create_tables(connection)
        return
    metadata.create_all(bind)
    inspector = inspect(bind)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                kind = column.type.compile(dialect=bind.dialect)
                bind.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
