"""The FastAPI app: `create_app(settings)` puts the service's state on the app and includes the routers.

The routers are module-level (classify.py, trends.py, retention.py, outcomes.py, alerts.py, operations.py)
and get what they need through the dependencies of dependencies.py; the state (state.py) loads the model
in the background when the app starts. Every `/v1` route needs an API key when keys are configured.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader

from reason_classifier.classifier import ReasonClassifier

from . import alerts, classify, operations, outcomes, retention, trends
from .dependencies import require_key
from .docs import install_docs
from .errors import install_error_handlers
from .middleware import RequestContext
from .models import ErrorResponse
from .settings import ServiceSettings
from .state import ServiceState

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "The body is not valid JSON.",
        401: "API keys are configured and the request has none or a wrong one.",
        413: "The body is over `max_body_bytes`.",
        422: "A field is missing, of the wrong type, or over its limit; `error.field` names it.",
        503: "The model is not ready, failed, or did not answer within `predict_timeout_seconds`.",
    }.items()
}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServiceState = app.state.service
    await state.start()
    try:
        yield
    finally:
        await state.stop()


def create_app(settings: ServiceSettings | None = None, classifier: ReasonClassifier | None = None) -> FastAPI:
    """The service's ASGI app. `settings` default to the environment (and its config file);
    `classifier` may be given to share one loaded model (tests); otherwise it is loaded at start-up."""
    settings = settings or ServiceSettings.load()
    logging.getLogger("service").setLevel(settings.log_level.upper())
    state = ServiceState(settings, classifier)
    app = FastAPI(
        title="reason-classifier",
        version="1",
        summary="Classifies a cancellation answer into a churn reason, with the save offer and the team to alert.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load Swagger UI and ReDoc from a CDN: docs.py serves /docs offline
        redoc_url=None,
        # json.dumps, as the answers were always written (pydantic's own JSON writes 1e-05 as 0.00001).
        default_response_class=JSONResponse,
    )
    app.state.service = state
    install_error_handlers(app)
    # The header's name is a setting: documented here under that name, checked by `require_key`.
    api_key = APIKeyHeader(
        name=settings.api_key_header, auto_error=False, description="One of the configured API keys."
    )
    for router in (classify.router, trends.router, retention.router, outcomes.router, alerts.router):
        app.include_router(router, dependencies=[Security(api_key), Depends(require_key)], responses=ERROR_RESPONSES)
    app.include_router(operations.router)
    install_docs(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", settings.api_key_header, "x-request-id"],
            expose_headers=["x-request-id"],
        )
    app.add_middleware(
        RequestContext,
        metrics=state.metrics,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_seconds=settings.body_timeout_seconds,
    )
    return app
