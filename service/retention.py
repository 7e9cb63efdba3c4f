"""`GET /v1/retention`: saved revenue and offer performance of the stored answers and their outcomes, the
same numbers as `reason-classifier retention`.

A thin layer over `reason_classifier.retention.compute_retention` on the service's store. Numbers
only: segments come from the same allow-list as `/v1/trends` (never a customer id), and an error
never quotes a stored value. Like the trends, one computation runs at a time and an answer is
reused for `trends_cache_seconds`: the same process answers the cancel flow.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from reason_classifier.database import database_url
from reason_classifier.errors import ReasonClassifierError, SourceNotFound
from reason_classifier.retention.models import RetentionDocument
from reason_classifier.retention.options import RetentionOptions
from reason_classifier.trends.options import Segment
from reason_classifier.trends.periods import Period

from .body import OffLoopJsonRoute
from .dependencies import StateDep
from .errors import ApiError
from .trends import check_segment

log = logging.getLogger("service.retention")

router = APIRouter(prefix="/v1", tags=["retention"], route_class=OffLoopJsonRoute)


class _NothingStored(Exception):
    """The store's SQLite file does not exist yet: no answer was stored."""


def _compute(url: str, options: RetentionOptions) -> bytes:
    """The retention document as JSON bytes: computed and serialised in a worker thread, never on the event loop."""
    from reason_classifier.retention.aggregate import compute_retention, open_sources  # pandas, DuckDB

    try:
        sources = open_sources(url)
    except SourceNotFound:
        raise _NothingStored from None
    try:
        document = compute_retention(sources, options).model_dump(mode="json")
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    finally:
        sources.close()


@router.get(
    "/retention",
    response_model=RetentionDocument,
    responses={404: {"description": "The service has no store configured, or nothing was stored yet."}},
)
async def retention(
    state: StateDep,
    period: Literal["week", "month", "quarter"] = "month",
    by: Annotated[
        list[str],
        Query(description="Segment, repeatable: by=plan&by=language; `metadata.KEY`; `mrr:50,200`."),
    ] = [],  # noqa: B006 - FastAPI copies a query default for each request
    since: Annotated[date | None, Query(description="First day of answers reported (inclusive).")] = None,
    until: Annotated[date | None, Query(description="Last day of answers reported (inclusive).")] = None,
    horizon_months: Annotated[float, Query(gt=0, le=120, description="Saved revenue = saved MRR × months.")] = 12.0,
    timezone: Annotated[str, Query(description="IANA time zone the periods are cut in.")] = "UTC",
) -> Response:
    """Answers, offers shown, accept rates (Wilson intervals), deflections, saved MRR and revenue per period,
    reason, offer, variant and segment; the save funnel; each experiment's variants against its control."""
    from reason_classifier.retention.aggregate import SpanTooLong  # pandas and DuckDB: the [trends] extra

    settings = state.settings
    if not settings.store:
        raise ApiError(404, "no_store", "the service stores no answers (setting `store` is empty): no retention")
    for segment in by:
        check_segment(segment, settings.trends_metadata_keys)
    controls = state.offers_config.experiment_controls
    try:  # the options hold only what the caller sent: their errors may quote it
        options = RetentionOptions(
            period=Period.parse(period),
            by=tuple(Segment.parse(s) for s in by),
            since=since,
            until=until,
            horizon_months=horizon_months,
            controls=controls,
            timezone=timezone,
        )
    except ReasonClassifierError as error:
        raise ApiError(422, "invalid_request", str(error)) from None
    url = database_url(settings.store)
    try:
        document = await state.retention.get(repr(options.to_dict()), lambda: asyncio.to_thread(_compute, url, options))
    except _NothingStored:
        raise ApiError(404, "no_store", "nothing has been stored yet") from None
    except SpanTooLong as error:  # about the options: no stored value in it
        raise ApiError(422, "invalid_request", str(error)) from None
    except ReasonClassifierError as error:  # a stored value that cannot be read: never quoted
        log.error("retention: the stored answers or outcomes cannot be read; details at debug level")
        log.debug("retention: %s", error)
        raise ApiError(
            503, "store_error", "the stored answers cannot be read for retention now; the log has the details"
        ) from None
    return Response(document, media_type="application/json")
