"""Recording an outcome beside its answer in the store: one per answer, the same report twice is harmless.

The cancel flow names the answer by its request id (and item, for a batch), or by the customer id,
which means that customer's latest answer. A second report of the same outcome is accepted as it
is (a retry after a lost response must not fail); a different one is refused, since an outcome
that changes after the fact would rewrite the saved revenue already reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ..answer_store_schema import classified_answers, offer_outcomes
from ..errors import ReasonClassifierError
from .outcomes import OutcomeKind


class UnknownAnswer(ReasonClassifierError):
    """No stored answer has this request id (and item), or this customer has none."""


class ConflictingOutcome(ReasonClassifierError):
    """The answer already has a different outcome; `existing` is what was recorded."""

    def __init__(self, message: str, existing: RecordedOutcome) -> None:
        super().__init__(message)
        self.existing = existing


@dataclass(frozen=True)
class RecordedOutcome:
    request_id: str
    item: int
    customer_id: str | None
    outcome: OutcomeKind
    mrr_kept: float | None
    recorded_at: datetime
    created: bool
    """False when the same outcome had been recorded before (an idempotent repeat)."""


def record_outcome(
    engine: Engine,
    outcome: OutcomeKind,
    *,
    request_id: str | None = None,
    item: int = 0,
    customer_id: str | None = None,
    mrr_kept: float | None = None,
    now: datetime | None = None,
) -> RecordedOutcome:
    """Store `outcome` for the answer named by `request_id` and `item`, or else the latest answer of
    `customer_id`. Raises `UnknownAnswer` or `ConflictingOutcome`; never stores two outcomes for one answer."""
    if (request_id is None) == (customer_id is None):
        raise ValueError("name the answer by request_id or by customer_id")
    now = now or datetime.now(UTC)
    with engine.begin() as connection:
        request_id, item, customer = _answer(connection, request_id, item, customer_id)
        existing = _existing(connection, request_id, item)
        if existing is None:
            try:
                with connection.begin_nested():
                    connection.execute(
                        insert(offer_outcomes).values(
                            created_at=now,
                            request_id=request_id,
                            item=item,
                            customer_id=customer,
                            outcome=outcome.value,
                            mrr_kept=mrr_kept,
                        )
                    )
                return RecordedOutcome(request_id, item, customer, outcome, mrr_kept, now, True)
            except IntegrityError:  # another request recorded one in between
                existing = _existing(connection, request_id, item)
                assert existing is not None
    if existing.outcome is outcome and existing.mrr_kept == mrr_kept:
        return existing
    raise ConflictingOutcome(
        f"this answer already has the outcome {existing.outcome.value!r}"
        + (f" with mrr_kept {existing.mrr_kept}" if existing.mrr_kept is not None else "")
        + "; an outcome is recorded once",
        existing,
    )


def _answer(
    connection: Connection, request_id: str | None, item: int, customer_id: str | None
) -> tuple[str, int, str | None]:
    c = classified_answers.c
    if request_id is not None:
        row = connection.execute(
            select(c.customer_id).where(and_(c.request_id == request_id, c.item == item)).limit(1)
        ).first()
        if row is None:
            raise UnknownAnswer(f"no stored answer has this request_id (item {item})")
        return request_id, item, row.customer_id
    row = connection.execute(
        select(c.request_id, c.item).where(c.customer_id == customer_id).order_by(c.created_at.desc(), c.id.desc())
    ).first()
    if row is None:
        raise UnknownAnswer("no stored answer has this customer_id")
    return row.request_id, row.item, customer_id


def _existing(connection: Connection, request_id: str, item: int) -> RecordedOutcome | None:
    o = offer_outcomes.c
    row = connection.execute(
        select(o.customer_id, o.outcome, o.mrr_kept, o.created_at).where(
            and_(o.request_id == request_id, o.item == item)
        )
    ).first()
    if row is None:
        return None
    recorded = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return RecordedOutcome(request_id, item, row.customer_id, OutcomeKind(row.outcome), row.mrr_kept, recorded, False)
