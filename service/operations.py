"""`/healthz`, `/readyz` and `/metrics`: what an orchestrator and a scraper ask; no API key needed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from .dependencies import StateDep
from .models import Status, StoreStatus

router = APIRouter(tags=["operations"])

_STATUS_503: dict[int | str, dict[str, Any]] = {503: {"model": Status}}


@router.get("/healthz", responses=_STATUS_503)
async def healthz(state: StateDep, response: Response) -> Status:
    """Alive: the process answers, with the model's version once it is loaded. 503 only when loading failed for good."""
    if state.load_error is not None:
        response.status_code = 503
        return Status(status="failed", detail=state.load_error)
    return Status(status="alive", model_version=state.model_version)


@router.get("/readyz", responses=_STATUS_503)
async def readyz(state: StateDep, response: Response) -> Status:
    """Ready: the model is loaded and warmed, and the store (if any) can be written or spools.
    503 with `loading`, `failed`, or `store_unavailable` (naming the path) otherwise."""
    store = StoreStatus.model_validate(state.store.health(), from_attributes=True) if state.store is not None else None
    if state.load_error is not None:
        response.status_code = 503
        return Status(status="failed", detail=state.load_error)
    if state.store_problem is not None:
        response.status_code = 503
        return Status(
            status="store_unavailable", model_version=state.model_version, detail=state.store_problem, store=store
        )
    if not state.ready:
        response.status_code = 503
        return Status(status="loading", model_version=state.model_version)
    if not state.accepting_answers:
        response.status_code = 503
        detail = state.store.problem if state.store is not None else None
        return Status(status="store_unavailable", model_version=state.model_version, detail=detail, store=store)
    return Status(status="ready", model_version=state.model_version, store=store)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics(state: StateDep) -> Response:
    """Prometheus metrics: requests, latency, predictions per category, model errors, lost store rows."""
    return Response(state.metrics.render(), media_type=state.metrics.content_type)
