"""Storage of classified answers for the trends reports: SQLite by file path, any SQLAlchemy URL otherwise.

Nothing acknowledged is lost. A row is appended to the local spool (spool.py) before its request
is answered, and one background thread writes the spool to the database in batches, so a request
never waits for the database and concurrent requests never contend for it (SQLite allows one
writer). While the database cannot be written (away, restarting, locked, full, read-only) the
writer retries with backoff and the rows wait in the spool; what a previous process left there is
written at start-up. A row the database refuses on its own, while it accepts others, is kept in
the spool's `rejected.jsonl`. If the spool itself cannot be written, `add` raises
`StoreUnavailable` and the request is answered 503: not acknowledged, so not lost.

Several processes (replicas behind a load balancer) may write one PostgreSQL database. A row is
keyed by its request id and item: a unique index holds them, and a row whose key is stored
already is skipped (`ON CONFLICT DO NOTHING`), so a replayed spool or a client's retry with the
same `X-Request-ID`, on any replica, never stores an answer twice. The table and its index are
created in one step under a PostgreSQL advisory lock, so replicas starting together do not race
to create them. With `store_acknowledge = committed` a request is answered once its rows are in
the database (`stored`), so a replica that dies takes nothing acknowledged with it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from reason_classifier.answer_store_schema import REQUEST_ITEM, classified_answers, create_tables
from reason_classifier.database import database_url
from reason_classifier.webhooks.outbox import insert_alerts

from .spool import REJECTED, Segment, Spool, SpoolError, decode
from .text import clean

log = logging.getLogger("service.store")

SCHEMA_LOCK = 0x7265617363_6C73  # "reascls": the advisory lock the schema step holds in PostgreSQL
"""Advisory lock key held while the table and index are created, so that replicas starting together take turns."""

_BATCH_ROWS = 500
_RETRY_FIRST_SECONDS = 0.05
_WAIT_POLL_SECONDS = 0.005


def now() -> datetime:
    return datetime.now(UTC)


def prepare_schema(engine: Engine) -> None:
    """Create the table and its request-id index if they are missing: in PostgreSQL in one transaction holding an
    advisory lock, so that replicas starting together create them once instead of failing on each other's
    `CREATE`. Rows a version without the index stored twice (same request id and item) are removed first, the
    first one kept, since the index cannot be created over them."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        create_tables(connection)
        if _has_index(connection, str(REQUEST_ITEM.name)):
            return
        removed = connection.execute(
            text(
                "DELETE FROM classified_answers WHERE id NOT IN "
                "(SELECT min(id) FROM classified_answers GROUP BY request_id, item)"
            )
        ).rowcount
        if removed:
            log.warning("removed %d answer(s) stored twice (same request id and item) before indexing them", removed)
        REQUEST_ITEM.create(connection, checkfirst=True)


def _has_index(connection: Any, name: str) -> bool:
    from sqlalchemy import inspect

    return any(index["name"] == name for index in inspect(connection).get_indexes(classified_answers.name))


class StoreUnavailable(Exception):
    """The answer cannot be stored now (the spool cannot be written, or the database is away and
    `store_when_down` is `refuse`): the request is answered 503, never acknowledged and lost."""


@dataclass(frozen=True)
class Ticket:
    """Where `add` put rows in the spool: they are in the database once the writer is past `end`."""

    segment: Segment
    end: int


@dataclass
class StoreHealth:
    status: str
    """`ok`; `retrying` while the database cannot be written (rows wait in the spool); `starting` before a write."""
    pending_rows: int
    written_rows: int
    rejected_rows: int
    spool: str
    detail: str | None = None


def default_spool(store: str) -> Path:
    """Beside an SQLite file (`answers.db.spool`); for a database URL, under the user's state folder."""
    url = database_url(store)
    if url.startswith("sqlite:"):
        from sqlalchemy.engine import make_url

        return Path(f"{make_url(url).database}.spool")
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "reason-classifier" / f"spool-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


class AnswerStore:
    """Appends classified answers to the library's `classified_answers` table (created if needed), through the spool.

    `add()` appends to the spool and returns (or raises `StoreUnavailable`); one background thread
    writes the spool to the database in batches, retrying with backoff (up to `retry_max_seconds`
    between tries) while the database cannot be written, and replays what earlier processes left.
    """

    def __init__(
        self,
        store: str,
        spool: str | Path | None = None,
        *,
        retry_max_seconds: float = 5.0,
        on_rejected: Callable[[int], None] | None = None,
    ) -> None:
        url = database_url(store)
        self.description = _hide_password(store)
        sqlite = url.startswith("sqlite")
        # hide_parameters: a failed insert must not put the answer text into the log.
        # SQLite without a pool: each batch opens the file anew, so a file that became unwritable (or
        # writable again) is seen at once instead of through a connection opened before.
        self.engine: Engine = create_engine(
            url, hide_parameters=True, **({"poolclass": NullPool} if sqlite else {"pool_pre_ping": True})
        )
        if sqlite:
            self.path = Path(self.engine.url.database or "")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            event.listen(self.engine, "connect", _sqlite_pragmas)
            self.description = str(self.path)
        self.spool = Spool(spool or default_spool(store))
        self.retry_max_seconds = retry_max_seconds
        self._on_rejected = on_rejected or (lambda rows: None)
        self.on_alerts: Callable[[], None] = lambda: None
        """Called after alerts were written to the outbox (with their answers): the dispatcher's wake-up."""
        self.up: bool | None = None
        self.problem: str | None = None
        self.written_rows = 0
        self.rejected_rows = 0
        self._table_ready = False
        self._uncertain = False  # the last batch failed: it may have been committed all the same
        self._schema_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._drain_deadline = float("inf")
        self._writer = threading.Thread(target=self._write_forever, name="answer-store", daemon=True)
        self._writer.start()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def pending_rows(self) -> int:
        return self.spool.pending_rows

    def health(self) -> StoreHealth:
        status = "starting" if self.up is None else "ok" if self.up else "retrying"
        return StoreHealth(
            status,
            self.pending_rows,
            self.written_rows,
            self.rejected_rows,
            str(self.spool.folder),
            self.problem if self.up is False else None,
        )

    def check(self) -> None:
        """Raise `StoreUnavailable` naming the database unless a row can be written now (inserted, then rolled back)."""
        try:
            self._create_table()
            with self.engine.connect() as connection, connection.begin() as transaction:
                connection.execute(classified_answers.insert(), [_PROBE_ROW | {"created_at": now()}])
                transaction.rollback()
        except Exception as error:
            raise StoreUnavailable(f"cannot write the store {self.description}: {_reason(error)}") from None

    def add(self, rows: list[dict[str, Any]]) -> Ticket:
        """Put rows in the spool for the writer; returns once they are on local disk, with the ticket `stored`
        and `wait_stored` tell from whether they are in the database yet."""
        try:
            segment, end = self.spool.append([{**row, "metadata": clean(row.get("metadata"))} for row in rows])
        except SpoolError as error:
            raise StoreUnavailable(str(error)) from None
        self._wake.set()
        return Ticket(segment, end)

    def stored(self, ticket: Ticket) -> bool:
        """Whether the rows of `ticket` are in the database (or were refused on their own and set aside)."""
        return ticket.segment.consumed >= ticket.end

    async def wait_stored(self, ticket: Ticket, timeout: float) -> bool:
        """Wait until the rows of `ticket` are in the database; False if `timeout` passed first (they stay in
        the spool and are written later: a retry with the same request id is then skipped, not stored twice)."""
        import asyncio

        deadline = time.monotonic() + timeout
        while not self.stored(ticket):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_WAIT_POLL_SECONDS)
        return True

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every row added so far is in the database (or rejected); False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        while self.pending_rows:
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.005)
        return True

    def count(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(classified_answers)).scalar_one()

    def rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            result = connection.execute(select(classified_answers).order_by(classified_answers.c.id))
            return [dict(row._mapping) for row in result]

    def close(self, timeout: float = 10.0) -> int:
        """Write what is pending for at most `timeout` seconds, then stop; returns the rows left in the spool
        (written at the next start)."""
        self._drain_deadline = time.monotonic() + timeout
        self._stopping.set()
        self._wake.set()
        self._writer.join(timeout + 1.0)
        left = self.pending_rows
        if left:
            log.warning(
                "%d classified answer(s) are not in the database yet; they stay in the spool %s and are "
                "written at the next start",
                left,
                self.spool.folder,
            )
        if not self._writer.is_alive():
            self.spool.close()
        self.engine.dispose()
        return left

    # --- the writer thread ---------------------------------------------------------------------------------

    def _write_forever(self) -> None:
        delay = 0.0
        while True:
            self._wake.clear()
            try:
                progressed = self._write_some()
            except Exception as error:  # the database is away, locked, full or unwritable
                progressed = None
                self._failed(error)
            delay = min(max(_RETRY_FIRST_SECONDS, delay * 2), self.retry_max_seconds) if progressed is None else 0.0
            if self._stopping.is_set() and (not self.pending_rows or time.monotonic() >= self._drain_deadline):
                return
            if progressed:
                continue
            if self._stopping.is_set():
                time.sleep(min(delay or 0.05, max(0.0, self._drain_deadline - time.monotonic())))
            elif delay:
                self._stopping.wait(delay)  # not _wake: requests arriving during an outage must not hurry the retries
            else:
                self._wake.wait(1.0)

    def _write_some(self) -> bool:
        """Write one batch from the spool; False when there was nothing to write."""
        if not self._table_ready:
            self._create_table()
            self._table_ready = True
        left_over = self.spool.left_over
        if left_over:
            segment = left_over[0]
            lines = segment.read_lines(segment.size, _BATCH_ROWS)
            if lines:
                self._write_lines(segment, lines, dedupe=True, left_over=True)
            elif segment.consumed < segment.size:  # a torn last line (never acknowledged): kept aside, not counted
                self.spool.reject(os.pread(segment.fd, segment.size - segment.consumed, segment.consumed), "torn line")
                segment.consumed = segment.size
            if segment.consumed >= segment.size:
                segment.remove()
                left_over.pop(0)
            return True
        segment, end = self.spool.current_end()
        lines = segment.read_lines(end, _BATCH_ROWS)
        if not lines:
            self.spool.rotate_if_done()
            return False
        self._write_lines(segment, lines, dedupe=self._uncertain, left_over=False)
        return True

    def _write_lines(self, segment: Segment, lines: list[tuple[bytes, int]], dedupe: bool, left_over: bool) -> None:
        """Insert the rows of `lines`, advancing the segment past each row written. Raises when the
        database cannot be written; a row it refuses on its own (while it takes a probe row) is set
        aside in the spool's rejected file."""
        rows: list[tuple[dict[str, Any] | None, bytes, int]] = []
        for line, end in lines:
            try:
                rows.append((decode(line), line, end))
            except ValueError:
                rows.append((None, line, end))
        try:
            self._insert([row for row, _, _ in rows if row is not None], dedupe)
        except Exception as error:
            if not self._writable():
                raise
            log.warning(
                "the database refuses a batch of %d answer(s) (%s); writing them one by one", len(rows), _reason(error)
            )
        else:
            for row, line, end in rows:
                if row is None:
                    self._reject(line, "not JSON", left_over)
                else:
                    self._done(1, left_over)
                segment.consumed = end
            return
        for row, line, end in rows:  # one by one: the database took the probe, so some row is the problem
            if row is None:
                self._reject(line, "not JSON", left_over)
            else:
                try:
                    self._insert([row], dedupe)
                except Exception as error:
                    if not self._writable():
                        raise
                    self._reject(line, type(getattr(error, "orig", None) or error).__name__, left_over)
                else:
                    self._done(1, left_over)
            segment.consumed = end

    def _done(self, rows: int, left_over: bool) -> None:
        if left_over:
            self.spool.left_over_rows -= rows
        else:
            self.spool.done_rows += rows
        if self.up is False:
            log.info(
                "the store %s is writable again; writing the %d spooled answer(s)", self.description, self.pending_rows
            )
        self.up, self.problem, self._uncertain = True, None, False
        self.written_rows += rows

    def _create_table(self) -> None:
        with self._schema_lock:  # the writer and a readiness check may both try; SQLite would refuse the second
            prepare_schema(self.engine)

    def _insert(self, rows: list[dict[str, Any]], dedupe: bool) -> None:
        """The answers and their alerts (a row's `alerts`) in one transaction: an alert is in the outbox
        exactly when its answer is stored."""
        if not rows:
            return
        skipping = _insert_skipping_stored(self.dialect)
        alerts: list[dict[str, Any]] = []
        with self.engine.begin() as connection:
            if skipping is None and dedupe:
                rows = _not_stored_yet(connection, rows)
            if rows:
                answers = [{k: v for k, v in row.items() if k != "alerts"} for row in rows]
                connection.execute(skipping if skipping is not None else classified_answers.insert(), answers)
                # an answer stored before had its alert stored with it: insert_alerts skips an alert id it has
                alerts = [alert for row in rows for alert in row.get("alerts") or ()]
                if alerts:
                    insert_alerts(connection, alerts)
        if alerts:
            self.on_alerts()

    def _writable(self) -> bool:
        try:
            self.check()
            return True
        except StoreUnavailable:
            return False

    def _reject(self, line: bytes, reason: str, left_over: bool) -> None:
        log.error(
            "the database refuses an answer on its own (%s); it is kept in %s", reason, self.spool.folder / REJECTED
        )
        try:
            self.spool.reject(line, reason)
        except OSError:
            log.exception("cannot keep the refused answer in %s", self.spool.folder / REJECTED)
        if left_over:
            self.spool.left_over_rows -= 1
        else:
            self.spool.done_rows += 1
        self.rejected_rows += 1
        self._on_rejected(1)

    def _failed(self, error: Exception) -> None:
        self._uncertain = True
        self._table_ready = False
        problem = f"cannot write the store {self.description}: {_reason(error)}"
        if self.up is not False or problem != self.problem:
            log.warning(
                "%s; %d answer(s) wait in the spool %s, retrying", problem, self.pending_rows, self.spool.folder
            )
        self.up, self.problem = False, problem
        if self.dialect != "sqlite":
            self.engine.dispose()  # connections to a server that went away


_PROBE_ROW = {
    "request_id": "store-probe",
    "item": 0,
    "text": "",
    "category": "other",
    "abstained": True,
    "model_version": "probe",
}


def _insert_skipping_stored(dialect: str) -> Any:
    """An INSERT that skips a row whose request id and item are stored already, where the database has one."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(classified_answers).on_conflict_do_nothing(index_elements=["request_id", "item"])
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(classified_answers).on_conflict_do_nothing(index_elements=["request_id", "item"])
    return None


def _not_stored_yet(connection: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows whose (request_id, item) is not in the table: a replay after a crash between the
    database's commit and the spool's bookkeeping must not store a row twice."""
    ids = sorted({row["request_id"] for row in rows})
    found = {
        tuple(row)
        for row in connection.execute(
            select(classified_answers.c.request_id, classified_answers.c.item).where(
                classified_answers.c.request_id.in_(ids)
            )
        )
    }
    return [row for row in rows if (row["request_id"], row["item"]) not in found]


def _reason(error: BaseException) -> str:
    """The database's own words, first line only, without SQL or parameters."""
    original = getattr(error, "orig", None) or error
    text = str(original).strip().splitlines()[0] if str(original).strip() else ""
    return f"{type(original).__name__}: {text}" if text else type(original).__name__


def _hide_password(store: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", store)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (reports) do not block the writer
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
