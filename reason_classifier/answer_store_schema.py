"""The tables of the answer store, defined once: the service writes them and the trends read them.

SQLAlchemy Core tables on one `metadata`, so `metadata.create_all(engine)` makes every table a
store needs. A table that the service and a report both use belongs here, not in either of them.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text

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
)
"""One row per classified answer: what the caller sent (`language_given` is the caller's hint), what the
model answered, the offer shown and the team alerted; `(request_id, item)` names the answer in its request."""

REQUEST_ITEM = Index(
    "classified_answers_request_item", classified_answers.c.request_id, classified_answers.c.item, unique=True
)
"""One row per request id and item: what makes a replay or a retry store nothing twice."""
