"""Storage of classified answers for the trends reports: SQLite by file path, any SQLAlchemy URL otherwise.

Rows are written by one background thread in batches, so a request never waits for the database
and concurrent requests never contend for it (SQLite allows one writer). `flush()` waits until
every row handed over so far is written; `close()` flushes, then stops. A failed write is logged
with its row count and counted in the metrics; the cancel flow is never failed because of it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine

from reason_classifier.database import database_url

log = logging.getLogger("service.store")

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

_STOP = object()
_BATCH_ROWS = 500


def now() -> datetime:
    return datetime.now(UTC)


class AnswerStore:
    """Appends classified answers to `classified_answers`, creating the table if needed."""

    def __init__(self, store: str, on_error: Callable[[int], None] | None = None) -> None:
        url = database_url(store)
        # hide_parameters: a failed insert must not put the answer text into the log.
        self.engine: Engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"), hide_parameters=True)
        if self.engine.dialect.name == "sqlite":
            Path(self.engine.url.database or "").parent.mkdir(parents=True, exist_ok=True)
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)
        self._on_error = on_error or (lambda rows: None)
        self._queue: queue.Queue[Any] = queue.Queue()
        self._writer = threading.Thread(target=self._write_forever, name="answer-store", daemon=True)
        self._writer.start()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Hand rows to the writer; returns at once."""
        self._queue.put(rows)

    def flush(self) -> None:
        """Block until every row added so far is written (or its failure logged)."""
        self._queue.join()

    def count(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(classified_answers)).scalar_one()

    def rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            result = connection.execute(select(classified_answers).order_by(classified_answers.c.id))
            return [dict(row._mapping) for row in result]

    def close(self) -> None:
        self._queue.put(_STOP)
        self._writer.join(timeout=30)
        self.engine.dispose()

    def _write_forever(self) -> None:
        while True:
            pending = [self._queue.get()]
            while len(pending) < _BATCH_ROWS:
                try:
                    pending.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in pending)
            rows = [row for item in pending if item is not _STOP for row in item]
            if rows:
                self._write(rows)
            for _ in pending:
                self._queue.task_done()
            if stop:
                return

    def _write(self, rows: list[dict[str, Any]]) -> None:
        try:
            self._insert(rows)
            return
        except Exception:
            if len(rows) == 1:
                log.exception("could not store a classified answer; retrying once")
            else:
                log.warning("could not store a batch of %d answers; writing them one by one", len(rows), exc_info=True)
        # One row the database refuses (e.g. a NUL character for PostgreSQL) must not cost the others.
        lost = 0
        for row in rows:
            try:
                self._insert([row])
            except Exception:
                lost += 1
                log.exception("could not store the answer of request %s; it is lost", row.get("request_id"))
        if lost:
            self._on_error(lost)

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        with self.engine.begin() as connection:
            connection.execute(classified_answers.insert(), rows)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (reports) do not block the writer
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
