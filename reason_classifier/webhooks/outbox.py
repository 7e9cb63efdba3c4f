"""The store's outbox of alerts: written with their answers, claimed by dispatchers, marked delivered or dead.

Several service replicas may share one PostgreSQL store: a dispatcher claims due alerts with
`SELECT … FOR UPDATE SKIP LOCKED` (rows another replica is claiming are skipped, not waited for)
and moves their `next_attempt_at` past the attempt (a lease), so no other dispatcher takes them
while they are being sent; if the process dies mid-attempt, the lease runs out and another (or the
next start) tries again. SQLite has one writer, so there the claim is a plain transaction and the
service is one process. Nothing is deleted: a delivered alert stays as the record that it was.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from ..answer_store_schema import alert_outbox
from .delivery import Attempt, AttemptResult, RetryPolicy
from .payload import Alert

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


def outbox_row(alert: Alert) -> dict[str, Any]:
    """The outbox row of a new alert: due at once, its horizon counted from its own time."""
    return {
        "alert_id": alert.id,
        "team": alert.team,
        "created_at": alert.created_at,
        "payload": alert.model_dump(mode="json", exclude_none=False),
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": alert.created_at,
        "retry_from": alert.created_at,
    }


def insert_alerts(connection: Connection, payloads: list[dict[str, Any]]) -> None:
    """Put alerts (their JSON, as the service spooled them) into the outbox within the caller's transaction;
    an alert already there (a replay of its answer) is not added twice."""
    alerts = [Alert.model_validate(payload) for payload in payloads]
    present = set(
        connection.execute(
            select(alert_outbox.c.alert_id).where(alert_outbox.c.alert_id.in_([a.id for a in alerts]))
        ).scalars()
    )
    rows = [outbox_row(a) for a in alerts if a.id not in present]
    if rows:
        connection.execute(insert(alert_outbox), rows)


@dataclass(frozen=True)
class Claimed:
    id: int
    alert: Alert
    attempts: int
    retry_from: datetime


@dataclass(frozen=True)
class DeadLetter:
    """A dead alert as an operator sees it: nothing identifying (no customer id, no answer text)."""

    alert_id: str
    team: str
    request_id: str
    created_at: datetime
    attempts: int
    last_status: int | None
    last_error: str | None


def _utc(value: datetime) -> datetime:
    """SQLite gives stored times back without their zone; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(self, limit: int, lease_seconds: float, now: datetime | None = None) -> list[Claimed]:
        """Take up to `limit` due alerts (oldest first) for `lease_seconds`."""
        now = now or datetime.now(UTC)
        with self.engine.begin() as connection:
            query = (
                select(alert_outbox.c.id, alert_outbox.c.payload, alert_outbox.c.attempts, alert_outbox.c.retry_from)
                .where(and_(alert_outbox.c.status == PENDING, alert_outbox.c.next_attempt_at <= now))
                .order_by(alert_outbox.c.next_attempt_at, alert_outbox.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            rows = connection.execute(query).all()
            if not rows:
                return []
            connection.execute(
                update(alert_outbox)
                .where(alert_outbox.c.id.in_([row.id for row in rows]))
                .values(next_attempt_at=now + timedelta(seconds=lease_seconds))
            )
        return [Claimed(row.id, Alert.model_validate(row.payload), row.attempts, _utc(row.retry_from)) for row in rows]

    def record(
        self,
        claimed: Claimed,
        attempt: Attempt,
        policy: RetryPolicy,
        now: datetime | None = None,
        rng: random.Random | None = None,
    ) -> str:
        """Store what one attempt gave; returns the alert's new status (delivered, pending or dead)."""
        now = now or datetime.now(UTC)
        attempts = claimed.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_status": attempt.status, "last_error": attempt.error}
        if attempt.result is AttemptResult.delivered:
            values |= {"status": DELIVERED, "delivered_at": now, "next_attempt_at": None}
        else:
            due = (
                policy.next_attempt(attempts, claimed.retry_from, now, rng)
                if attempt.result is AttemptResult.retry
                else None
            )
            values |= {"status": DEAD, "next_attempt_at": None} if due is None else {"next_attempt_at": due}
        with self.engine.begin() as connection:
            connection.execute(update(alert_outbox).where(alert_outbox.c.id == claimed.id).values(**values))
        return str(values.get("status", PENDING))

    def next_due(self) -> datetime | None:
        with self.engine.connect() as connection:
            due = connection.execute(
                select(func.min(alert_outbox.c.next_attempt_at)).where(alert_outbox.c.status == PENDING)
            ).scalar()
        return None if due is None else _utc(due)

    def counts(self) -> dict[str, int]:
        """Alerts by state: `pending` (not tried yet), `retrying` (tried and failed), `delivered`, `dead`."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(alert_outbox.c.status, alert_outbox.c.attempts, func.count()).group_by(
                    alert_outbox.c.status, alert_outbox.c.attempts
                )
            ).all()
        counts = {"pending": 0, "retrying": 0, DELIVERED: 0, DEAD: 0}
        for status, attempts, count in rows:
            key = ("retrying" if attempts else "pending") if status == PENDING else status
            counts[key] = counts.get(key, 0) + count
        return counts

    def dead(self, limit: int = 100, team: str | None = None) -> list[DeadLetter]:
        query = select(alert_outbox).where(alert_outbox.c.status == DEAD)
        if team is not None:
            query = query.where(alert_outbox.c.team == team)
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(alert_outbox.c.id).limit(limit)).all()
        return [
            DeadLetter(
                alert_id=row.alert_id,
                team=row.team,
                request_id=str(row.payload.get("request_id", "")),
                created_at=_utc(row.created_at),
                attempts=row.attempts,
                last_status=row.last_status,
                last_error=row.last_error,
            )
            for row in rows
        ]

    def replay(self, alert_ids: list[str] | None = None, team: str | None = None, now: datetime | None = None) -> int:
        """Make dead alerts (all, or those named, or a team's) due again, with a fresh retry horizon."""
        now = now or datetime.now(UTC)
        query = update(alert_outbox).where(alert_outbox.c.status == DEAD)
        if alert_ids is not None:
            query = query.where(alert_outbox.c.alert_id.in_(alert_ids))
        if team is not None:
            query = query.where(alert_outbox.c.team == team)
        with self.engine.begin() as connection:
            result = connection.execute(
                query.values(status=PENDING, attempts=0, next_attempt_at=now, retry_from=now, last_error=None)
            )
        return int(result.rowcount or 0)
