"""`GET /v1/trends`: the reason trends of the stored answers, the same numbers as `reason-classifier trends`.

A thin layer over `reason_classifier.trends.compute_trends` on the service's store. Answer texts
are never returned (no examples, no emerging reasons): dashboards get numbers only. Segments come
from an allow-list (plan, language, bands of mrr, and the metadata keys named by the setting
`trends_metadata_keys`), the weight is mrr or nothing, and an error never quotes a stored value:
a segment by `text` or `customer_id` would list every answer or customer as a segment value. A year of a
large store takes seconds to aggregate, and the same process answers the cancel flow, so one
computation runs at a time and an answer is reused for `trends_cache_seconds`: ten dashboards
refreshing together cost one computation, not ten on two cores.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from reason_classifier.database import database_url
from reason_classifier.errors import ReasonClassifierError, SourceNotFound, SourceUnreadable
from reason_classifier.trends.models import TrendsDocument
from reason_classifier.trends.options import Segment, TrendOptions
from reason_classifier.trends.periods import Period

from .body import OffLoopJsonRoute
from .dependencies import StateDep
from .errors import ApiError

log = logging.getLogger("service.trends")


SEGMENT_COLUMNS = ("plan", "language")
BANDED_COLUMNS = ("mrr",)
WEIGHTS = ("mrr",)

router = APIRouter(prefix="/v1", tags=["trends"], route_class=OffLoopJsonRoute)


def allowed_segments(metadata_keys: list[str]) -> list[str]:
    return [*SEGMENT_COLUMNS, *(f"{c}:EDGES" for c in BANDED_COLUMNS), *(f"metadata.{k}" for k in metadata_keys)]


def check_segment(text: str, metadata_keys: list[str]) -> None:
    """Refuse a segment outside the allow-list (the message quotes only what the caller sent)."""
    try:
        segment = Segment.parse(text)
    except ReasonClassifierError as error:
        raise ApiError(422, "invalid_request", f"by: {error}", "by") from None
    column = segment.column
    if column in SEGMENT_COLUMNS or (column in BANDED_COLUMNS and segment.bands):
        return
    if column.startswith("metadata.") and column.removeprefix("metadata.") in metadata_keys:
        return
    hint = " (it is a number: give bands, e.g. mrr:50,200)" if column in BANDED_COLUMNS else ""
    raise ApiError(
        422,
        "segment_not_allowed",
        f"by: {text[:100]!r} is not a segment the service reports{hint}; "
        f"allowed: {', '.join(allowed_segments(metadata_keys))} (setting trends_metadata_keys names the "
        "metadata keys)",
        "by",
    )


class _NothingStored(Exception):
    """The store's SQLite file does not exist yet: no answer was stored."""


class _StoreUnreadable(Exception):
    """The store could not be opened or its rows not read: the message may hold stored values."""


def _compute(url: str, options: TrendOptions) -> bytes:
    """The trends document as JSON bytes: computed and serialised in a worker thread, never on the event loop."""
    from reason_classifier.trends import compute_trends
    from reason_classifier.trends.sources import open_source

    try:
        source = open_source(url)
    except SourceNotFound:
        raise _NothingStored from None
    except ReasonClassifierError as error:
        raise _StoreUnreadable(str(error)) from error
    try:
        document = compute_trends(source, options).document.model_dump(mode="json")
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    except SourceUnreadable as error:
        raise _StoreUnreadable(str(error)) from error
    finally:
        source.close()


@router.get(
    "/trends",
    response_model=TrendsDocument,
    responses={404: {"description": "The service has no store configured, or nothing was stored yet."}},
)
async def trends(
    state: StateDep,
    period: Literal["week", "month", "quarter"] = "month",
    by: Annotated[
        list[str],
        Query(
            description="Segment, repeatable: by=plan&by=language; `metadata.KEY` for a key "
            "named by the setting `trends_metadata_keys` (default: contract); `mrr:50,200` for bands of MRR.",
        ),
    ] = [],  # noqa: B006 - FastAPI copies a query default for each request
    weight: Annotated[str | None, Query(description="`mrr` (revenue lost) or empty for counts only.")] = "mrr",
    since: Annotated[date | None, Query(description="First day reported (inclusive).")] = None,
    until: Annotated[date | None, Query(description="Last day reported (inclusive).")] = None,
    timezone: Annotated[str, Query(description="IANA time zone the periods are cut in.")] = "UTC",
) -> Response:
    """Answers, shares, revenue lost and changes per period, reason and segment, from the stored answers."""
    from reason_classifier.trends.aggregate import BadValueError  # pandas and DuckDB: the [trends] extra

    settings = state.settings
    if not settings.store:
        raise ApiError(404, "no_store", "the service stores no answers (setting `store` is empty), so it has no trends")
    for segment in by:
        check_segment(segment, settings.trends_metadata_keys)
    if weight and weight not in WEIGHTS:
        raise ApiError(
            422,
            "invalid_request",
            f"weight: {weight[:100]!r} is not a revenue column; use mrr, or leave it empty for counts only",
            "weight",
        )
    try:  # the options hold only what the caller sent: their errors may quote it
        options = TrendOptions(
            period=Period.parse(period),
            by=tuple(Segment.parse(s) for s in by),
            weight=weight or None,
            since=since,
            until=until,
            timezone=timezone,
            examples=0,
        )
    except ReasonClassifierError as error:
        raise ApiError(422, "invalid_request", str(error)) from None
    url = database_url(settings.store)
    try:
        document = await state.trends.get(repr(options.to_dict()), lambda: asyncio.to_thread(_compute, url, options))
    except _NothingStored:
        raise ApiError(404, "no_store", "nothing has been stored yet") from None
    except _StoreUnreadable as error:
        log.error("trends: the store cannot be read (%s); details at debug level", type(error.__cause__).__name__)
        log.debug("trends: %s", error)
        raise ApiError(
            503, "store_error", "the stored answers cannot be read for trends now; the log has the details"
        ) from None
    except BadValueError as error:  # never the stored value itself
        log.debug("trends: %s", error)
        raise ApiError(
            422,
            "unreadable_values",
            f"{error.column}: {error.rows} stored value(s) {error.problem} (values are not shown)",
            error.column,
        ) from None
    except ReasonClassifierError as error:  # about the options (a span too long to list): no stored value
        raise ApiError(422, "invalid_request", str(error)) from None
    return Response(document, media_type="application/json")
