"""`POST /v1/outcomes`: what happened after the offer (accepted, declined, cancelled, paused, downgraded),
stored beside its answer for the retention report."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from reason_classifier.retention.outcomes import OutcomeKind
from reason_classifier.retention.recording import ConflictingOutcome, RecordedOutcome, UnknownAnswer, record_outcome

from .body import OffLoopJsonRoute
from .dependencies import ReadyState
from .errors import ApiError
from .models import Encodable

_SPOOL_WAIT_SECONDS = 2.0

router = APIRouter(prefix="/v1", tags=["retention"], route_class=OffLoopJsonRoute)


class OutcomeRequest(BaseModel):
    """The answer is named by `request_id` (and `item` in a batch) or by `customer_id` (their latest answer)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"request_id": "5f0c9a0e4b6d4c1f", "outcome": "accepted", "mrr_kept": 63.2}]},
    )

    request_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    item: int = Field(default=0, ge=0, le=1_000_000, description="The answer's position in a batch request.")
    customer_id: Annotated[Encodable, Field(min_length=1, max_length=200)] | None = None
    outcome: OutcomeKind
    mrr_kept: float | None = Field(
        default=None, ge=0, le=1e12, allow_inf_nan=False, description="MRR the customer still pays, if known."
    )

    @model_validator(mode="after")
    def _names_one_answer(self) -> OutcomeRequest:
        if (self.request_id is None) == (self.customer_id is None):
            raise ValueError("give request_id or customer_id (one of them)")
        return self


class OutcomeResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    request_id: str
    item: int
    outcome: OutcomeKind
    mrr_kept: float | None
    recorded_at: datetime
    created: bool = Field(description="False when the same outcome had been recorded before (an idempotent repeat).")


@router.post(
    "/outcomes",
    status_code=201,
    responses={
        200: {"model": OutcomeResponse, "description": "The same outcome was recorded before: nothing changed."},
        404: {"description": "No stored answer has this request id (and item), or this customer has none."},
        409: {"description": "The answer already has a different outcome."},
    },
)
async def outcomes(body: OutcomeRequest, state: ReadyState, response: Response) -> OutcomeResponse:
    """Record what happened after the offer of one answer; once per answer, a repeat of the same is harmless."""
    store = state.store
    if store is None:
        raise ApiError(404, "no_store", "the service stores no answers (setting `store` is empty), so no outcomes")
    engine = store.engine

    def record() -> RecordedOutcome:
        return record_outcome(
            engine,
            body.outcome,
            request_id=body.request_id,
            item=body.item,
            customer_id=body.customer_id,
            mrr_kept=body.mrr_kept,
        )

    try:
        try:
            recorded = await asyncio.to_thread(record)
        except UnknownAnswer:
            if not store.pending_rows:
                raise
            # the answer may still be on its way from the spool to the database: wait for it, once
            await asyncio.to_thread(store.flush, _SPOOL_WAIT_SECONDS)
            recorded = await asyncio.to_thread(record)
    except UnknownAnswer as error:
        if store.pending_rows:
            raise ApiError(
                503, "store_unavailable", "recent answers are not in the database yet; retry later"
            ) from None
        field = "request_id" if body.request_id is not None else "customer_id"
        raise ApiError(404, "unknown_answer", f"{field}: {error}", field) from None
    except ConflictingOutcome as error:
        raise ApiError(409, "outcome_conflict", str(error), "outcome") from None
    except Exception:
        state.metrics.store_refused.inc()
        raise ApiError(503, "store_unavailable", "the outcome could not be stored now; retry later") from None
    if not recorded.created:
        response.status_code = 200
    return OutcomeResponse.model_validate(recorded, from_attributes=True)
