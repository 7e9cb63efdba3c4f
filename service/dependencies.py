"""What a route needs before it runs, as FastAPI dependencies: the app's state, a valid API key, a ready
model, a batch within its size. Routes declare them as typed parameters (`state: ReadyState`)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from .body import item_count
from .errors import ApiError
from .state import ServiceState


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


async def require_key(request: Request, state: StateDep) -> None:
    """401 unless the request carries one of the configured keys (none configured: every request passes).

    The header's name is a setting, so it is read here; the app documents it in OpenAPI under that name."""
    settings = state.settings
    if not settings.api_keys:
        return
    candidate = (request.headers.get(settings.api_key_header) or "").encode()
    matched = False
    for key in settings.api_keys:  # every key is compared, so timing says nothing about which one nearly matched
        matched |= hmac.compare_digest(candidate, key.encode())
    if not matched:
        raise ApiError(
            401,
            "unauthorized",
            f"a valid API key is required in the {settings.api_key_header} header",
            settings.api_key_header,
        )


async def ready_state(state: StateDep) -> ServiceState:
    """The state, once the model is loaded and warmed and answers can be stored; 503 before."""
    if not state.ready:
        raise ApiError(
            503,
            "not_ready",
            "the model is not loaded yet"
            if state.load_error is None
            else "the service could not load its model; see /readyz",
        )
    if not state.accepting_answers:
        state.metrics.store_refused.inc()
        raise ApiError(503, "store_unavailable", "answers cannot be stored now (the database is away); retry later")
    return state


ReadyState = Annotated[ServiceState, Depends(ready_state)]


async def require_batch_size(request: Request, state: StateDep) -> None:
    """Before pydantic validates the items: 60,000 of them cost the event loop far more than counting."""
    limit = state.settings.max_batch_items
    count = await item_count(request, "items")
    if count is not None and count > limit:
        raise ApiError(
            422, "batch_too_large", f"{count} items is over the limit of {limit} per request", "items", limit
        )


BatchSizeChecked = Annotated[None, Depends(require_batch_size)]
