"""The routes: a thin translation of typed requests into `ReasonClassifier.predict` and back."""

from __future__ import annotations

import hmac
import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader

from reason_classifier.answers import check_answer
from reason_classifier.classifier import Prediction
from reason_classifier.webhooks import Alert, OfferRef, alert_id

from .alerts import alerts_router
from .body import OffLoopJsonRoute, item_count
from .errors import ApiError, request_id_var
from .models import (
    BatchRequest,
    BatchResponse,
    ClassifyRequest,
    ClassifyResponse,
    ErrorResponse,
    Status,
    TaxonomyResponse,
)
from .outcomes import outcomes_router
from .predictor import ItemFailed, PredictTimeout
from .responses import json_response
from .retention import retention_router
from .store import StoreUnavailable, now
from .text import unencodable_at
from .trends import trends_router

if TYPE_CHECKING:
    from .app import ServiceState

log = logging.getLogger("service")

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "The body is not valid JSON.",
        401: "API keys are configured and the request has none or a wrong one.",
        413: "The body is over `max_body_bytes`.",
        422: "A field is missing, of the wrong type, or over its limit; `error.field` names it.",
        503: "The model is not ready, failed, or did not answer within `predict_timeout_seconds`.",
    }.items()
}


def build_router(state: ServiceState) -> APIRouter:
    settings = state.settings
    api_key = APIKeyHeader(
        name=settings.api_key_header, auto_error=False, description="One of the configured API keys."
    )
    accepted = [key.encode() for key in settings.api_keys]

    async def require_key(given: str | None = Depends(api_key)) -> None:  # async: a sync dependency costs a thread hop
        if not accepted:
            return
        candidate = (given or "").encode()
        matched = False
        for key in accepted:  # every key is compared, so timing says nothing about which one nearly matched
            matched |= hmac.compare_digest(candidate, key)
        if not matched:
            raise ApiError(
                401,
                "unauthorized",
                f"a valid API key is required in the {settings.api_key_header} header",
                settings.api_key_header,
            )

    async def require_ready() -> None:
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

    async def require_batch_size(request: Request) -> None:
        """Before pydantic validates the items: 60,000 of them cost the event loop far more than counting."""
        count = await item_count(request, "items")
        if count is not None and count > settings.max_batch_items:
            raise ApiError(
                422,
                "batch_too_large",
                f"{count} items is over the limit of {settings.max_batch_items} per request",
                "items",
                settings.max_batch_items,
            )

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], responses=_ERRORS, route_class=OffLoopJsonRoute)
    router = APIRouter()

    @v1.post("/classify", response_model=ClassifyResponse, dependencies=[Depends(require_ready)], tags=["classify"])
    async def classify(request: ClassifyRequest) -> Any:
        """Classify one answer: the reason, the save offer to show, and the team to alert."""
        _check_text(request.text, "text", state.max_chars)
        [prediction] = await _predict(state, [request])
        response = _respond(state, request, prediction, 0)
        await _store(state, [request], [response])
        return json_response(response)

    @v1.post(
        "/classify/batch",
        response_model=BatchResponse,
        dependencies=[Depends(require_ready), Depends(require_batch_size)],
        tags=["classify"],
    )
    async def classify_batch(batch: BatchRequest) -> Any:
        """Classify up to `max_batch_items` answers; the answers come back in the order sent."""
        for i, item in enumerate(batch.items):
            _check_text(item.text, f"items.{i}.text", state.max_chars)
        predictions = await _predict(state, batch.items)
        items = [_respond(state, item, p, i) for i, (item, p) in enumerate(zip(batch.items, predictions, strict=True))]
        await _store(state, batch.items, items)
        return json_response({"items": items, "model_version": state.model_version, "request_id": request_id_var.get()})

    @v1.get("/taxonomy", response_model=TaxonomyResponse, dependencies=[Depends(require_ready)], tags=["taxonomy"])
    async def taxonomy() -> Any:
        """The categories and sub-reasons the model predicts, with owner team and actionability."""
        assert state.classifier is not None
        data = state.classifier.taxonomy.model_dump(
            exclude={"categories": {"__all__": {"sub_reasons": {"__all__": {"examples"}}}}}
        )
        return {**data, "model_version": state.model_version}

    @router.get("/healthz", response_model=Status, tags=["operations"], responses={503: {"model": Status}})
    async def healthz() -> Any:
        """Alive: the process answers. 503 only when loading failed for good."""
        if state.load_error is not None:
            return JSONResponse({"status": "failed", "detail": state.load_error}, status_code=503)
        return {"status": "alive"}

    @router.get("/readyz", response_model=Status, tags=["operations"], responses={503: {"model": Status}})
    async def readyz() -> Any:
        """Ready: the model is loaded and warmed, and the store (if any) can be written or spools.
        503 with `loading`, `failed`, or `store_unavailable` (naming the path) otherwise."""
        store = asdict(state.store.health()) if state.store is not None else None
        if state.load_error is not None:
            return JSONResponse({"status": "failed", "detail": state.load_error}, status_code=503)
        if state.store_problem is not None:
            return JSONResponse(
                {"status": "store_unavailable", "detail": state.store_problem, "store": store}, status_code=503
            )
        if not state.ready:
            return JSONResponse({"status": "loading"}, status_code=503)
        if not state.accepting_answers:
            return JSONResponse(
                {
                    "status": "store_unavailable",
                    "detail": state.store.problem if state.store else None,
                    "model_version": state.model_version,
                    "store": store,
                },
                status_code=503,
            )
        return {"status": "ready", "model_version": state.model_version, "store": store}

    @router.get(
        "/metrics",
        tags=["operations"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
    )
    async def metrics() -> Response:
        """Prometheus metrics: requests, latency, predictions per category, model errors, lost store rows."""
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    v1.include_router(trends_router(state))
    v1.include_router(retention_router(state))
    v1.include_router(outcomes_router(state, require_ready))
    v1.include_router(alerts_router(state))
    router.include_router(v1)
    return router


def _check_text(text: str, field: str, max_chars: int) -> None:
    if not text.isascii() and (position := unencodable_at(text)) is not None:
        raise ApiError(
            422,
            "invalid_text",
            f"{field}: not valid Unicode (a lone surrogate at character {position}); send the answer as UTF-8 text",
            field,
        )
    problem = check_answer(text, max_chars)
    if problem is None:
        return
    if len(text) > max_chars:
        raise ApiError(422, "text_too_long", f"{field}: {problem}", field, max_chars)
    raise ApiError(422, "empty_text", f"{field}: {problem}", field)


async def _predict(state: ServiceState, items: list[ClassifyRequest]) -> list[Prediction]:
    request_id = request_id_var.get()
    if log.isEnabledFor(logging.DEBUG):
        for item in items:
            log.debug("request %s text %r", request_id, item.text)
    try:
        predictions = await state.predictor.predict(
            [item.text for item in items], state.settings.predict_timeout_seconds
        )
    except PredictTimeout as error:
        state.metrics.model_errors.labels("timeout").inc()
        log.error("request %s: %s (%d answer(s))", request_id, error, len(items))
        raise ApiError(503, "timeout", f"{error}; go on without a classification and retry later") from None
    except ItemFailed as failed:
        state.metrics.model_errors.labels("error").inc()
        field = "text" if len(items) == 1 else f"items.{failed.index}.text"
        log.error(
            "request %s: the model failed on %s: %s: %s",
            request_id,
            field,
            type(failed.error).__name__,
            failed.error,
            exc_info=failed.error,
        )
        raise ApiError(503, "model_error", f"the model could not classify {field}; go on without it", field) from None
    except Exception as error:
        state.metrics.model_errors.labels("error").inc()
        log.error("request %s: the model failed: %s: %s", request_id, type(error).__name__, error, exc_info=True)
        raise ApiError(503, "model_error", "the model could not classify this answer; go on without it") from None
    for i, prediction in enumerate(predictions):
        if prediction.error is not None:  # the model refused an answer we accepted (e.g. another max_chars)
            field = "text" if len(items) == 1 else f"items.{i}.text"
            raise ApiError(422, "invalid_text", f"{field}: {prediction.error}", field)
    return predictions


def _respond(state: ServiceState, request: ClassifyRequest, prediction: Prediction, item: int) -> dict[str, Any]:
    assert state.classifier is not None and state.offer_book is not None
    language = request.language or prediction.language
    decision = state.offer_book.decide(
        prediction.category,
        prediction.sub_reason,
        prediction.abstained,
        request.plan,
        request.mrr,
        customer_id=request.customer_id,
        language=language,
    )
    state.metrics.predictions.labels(prediction.category).inc()
    actionability = None
    if prediction.sub_reason is not None:
        sub_reason = state.classifier.taxonomy.sub_reason(prediction.sub_reason)
        actionability = {"voluntary": sub_reason.voluntary, "influenceable": sub_reason.influenceable}
    alert = None
    if decision.alert_team is not None:
        alert = {
            "team": decision.alert_team,
            "category": prediction.category,
            "sub_reason": prediction.sub_reason,
            "customer_id": request.customer_id,
            "plan": request.plan,
            "mrr": request.mrr,
        }
    response = {
        "category": prediction.category,
        "sub_reason": prediction.sub_reason,
        "confidence": prediction.confidence,
        "sub_reason_confidence": prediction.sub_reason_confidence,
        "scores": prediction.scores,
        "abstained": prediction.abstained,
        "language": language,
        "offer": {
            "id": decision.offer_id,
            "kind": decision.offer.kind.value,
            "message": decision.message,
            "experiment": decision.experiment,
            "variant": decision.variant,
        },
        "alert": alert,
        "actionability": actionability,
        "model_version": state.model_version,
        "request_id": request_id_var.get(),
    }
    return response


async def _store(state: ServiceState, requests: list[ClassifyRequest], responses: list[dict[str, Any]]) -> None:
    """Hand the rows to the store's spool before the answer is sent: a 503 rather than an acknowledged, lost row.
    With `store_acknowledge = committed`, wait until they are in the database."""
    if state.store is None:
        return
    created = now()
    rows = _rows(created, requests, responses)
    for row, request, response in zip(rows, requests, responses, strict=True):
        alert = _alert(state, request, response, row["item"], created)
        if alert is not None:
            row["alerts"] = [alert]
    try:
        ticket = state.store.add(rows)
    except StoreUnavailable as error:
        state.metrics.store_refused.inc()
        log.error("request %s: %s", request_id_var.get(), error)
        raise ApiError(503, "store_unavailable", "the answer could not be stored; retry later") from None
    settings = state.settings
    if settings.store_acknowledge == "committed" and not await state.store.wait_stored(
        ticket, settings.store_acknowledge_timeout_seconds
    ):
        state.metrics.store_refused.inc()
        log.error(
            "request %s: not in the database after %.1f s; it stays in the spool",
            request_id_var.get(),
            settings.store_acknowledge_timeout_seconds,
        )
        raise ApiError(
            503,
            "store_unavailable",
            "the answer is not stored yet; retry later with the same X-Request-ID (it will not be stored twice)",
        )


def _rows(created: Any, requests: list[ClassifyRequest], responses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "created_at": created,
            "request_id": response["request_id"],
            "item": i,
            "text": request.text,
            "customer_id": request.customer_id,
            "plan": request.plan,
            "mrr": request.mrr,
            "language_given": request.language,
            "metadata": request.metadata,
            "category": response["category"],
            "sub_reason": response["sub_reason"],
            "confidence": response["confidence"],
            "sub_reason_confidence": response["sub_reason_confidence"],
            "scores": response["scores"],
            "abstained": response["abstained"],
            "language": response["language"],
            "offer_id": response["offer"]["id"],
            "offer_kind": response["offer"]["kind"],
            "experiment": response["offer"]["experiment"],
            "variant": response["offer"]["variant"],
            "alert_team": response["alert"]["team"] if response["alert"] else None,
            "model_version": response["model_version"],
        }
        for i, (request, response) in enumerate(zip(requests, responses, strict=True))
    ]


def _alert(
    state: ServiceState, request: ClassifyRequest, response: dict[str, Any], item: int, created: Any
) -> dict[str, Any] | None:
    """The webhook alert of one answer, as JSON for the store's outbox, when its team has a webhook."""
    team = response["alert"]["team"] if response["alert"] else None
    destination = state.settings.webhooks.get(team) if team else None
    if team is None or destination is None:
        return None
    alert = Alert(
        id=alert_id(response["request_id"], item, team),
        created_at=created,
        team=team,
        request_id=response["request_id"],
        item=item,
        customer_id=request.customer_id,
        plan=request.plan,
        mrr=request.mrr,
        category=response["category"],
        sub_reason=response["sub_reason"],
        confidence=response["confidence"],
        language=response["language"],
        offer=OfferRef(id=response["offer"]["id"], kind=response["offer"]["kind"]),
        experiment=response["offer"]["experiment"],
        variant=response["offer"]["variant"],
        text=request.text if destination.include_text else None,
    )
    return alert.model_dump(mode="json")
