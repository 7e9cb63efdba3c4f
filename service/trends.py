"""`GET /v1/trends`: the reason trends of the stored answers, the same numbers as `reason-classifier trends`.

A thin layer over `reason_classifier.trends.compute_trends` on the service's store. Answer texts
are never returned (no examples, no emerging reasons): dashboards get numbers only. A year of a
large store takes seconds to aggregate, and the same process answers the cancel flow, so one
computation runs at a time and an answer is reused for `trends_cache_seconds`: ten dashboards
refreshing together cost one computation, not ten on two cores.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Query

from reason_classifier.errors import ReasonClassifierError

from .errors import ApiError
from .responses import json_response

if TYPE_CHECKING:
    from .app import ServiceState


def trends_router(state: ServiceState) -> APIRouter:
    from reason_classifier.trends.models import TrendsDocument

    router = APIRouter(tags=["trends"])
    one_at_a_time = asyncio.Lock()
    answers: dict[str, tuple[float, Any]] = {}

    @router.get(
        "/trends",
        response_model=TrendsDocument,
        responses={404: {"description": "The service has no store configured, or nothing was stored yet."}},
    )
    async def trends(
        period: Literal["week", "month", "quarter"] = "month",
        by: list[str] = Query(
            default=[],
            description=(
                "Segment column, repeatable: by=plan&by=language; `metadata.KEY` for a key of the stored "
                "metadata; `COLUMN:3,12,24` for bands of a number."
            ),
        ),
        weight: str | None = Query(default="mrr", description="Column summed as revenue lost; empty for counts only."),
        since: date | None = Query(default=None, description="First day reported (inclusive)."),
        until: date | None = Query(default=None, description="Last day reported (inclusive)."),
        timezone: str = Query(default="UTC", description="IANA time zone the periods are cut in."),
    ) -> Any:
        """Answers, shares, revenue lost and changes per period, reason and segment, from the stored answers."""
        from reason_classifier.database import database_url
        from reason_classifier.trends import TrendOptions, compute_trends

        if not state.settings.store:
            raise ApiError(
                404, "no_store", "the service stores no answers (setting `store` is empty), so it has no trends"
            )
        try:
            options = TrendOptions(
                period=period,
                by=tuple(by),
                weight=weight or None,
                since=since,
                until=until,
                timezone=timezone,
                examples=0,
            )
            query = repr(options.to_dict())
            async with one_at_a_time:
                made, document = answers.get(query, (float("-inf"), None))
                if time.monotonic() - made >= state.settings.trends_cache_seconds:
                    report = await asyncio.to_thread(compute_trends, database_url(state.settings.store), options)
                    document = report.document.model_dump(mode="json")
                    now = time.monotonic()
                    for stale in [
                        k for k, (at, _) in answers.items() if now - at >= state.settings.trends_cache_seconds
                    ]:
                        del answers[stale]
                    answers[query] = (now, document)
        except ReasonClassifierError as error:
            message = str(error)
            if "no such file" in message:
                raise ApiError(404, "no_store", "nothing has been stored yet") from None
            raise ApiError(422, "invalid_request", message) from None
        return json_response(document)

    return router
