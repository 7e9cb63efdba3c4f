"""`/v1/classify`, `/v1/classify/batch` and `/v1/taxonomy`: a thin translation of typed requests into
`ReasonClassifier.predict`, the save offer and the alert, and back; each answer is stored before it is sent."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter

from reason_classifier.answers import check_answer
from reason_classifier.classifier import Prediction
from reason_classifier.webhooks import Alert, OfferRef, alert_id

from .body import OffLoopJsonRoute
from .dependencies import BatchSizeChecked, ReadyState
from .errors import ApiError, request_id_var
from .models import (
    Actionability,
    AlertOut,
    BatchRequest,
    BatchResponse,
    ClassifyRequest,
    ClassifyResponse,
    OfferOut,
    TaxonomyResponse,
    stored_row,
)
from .predictor import ItemFailed, PredictTimeout
from .state import ServiceState
from .store import StoreUnavailable, now
from .text import unencodable_at

log = logging.getLogger("service")

router = APIRouter(prefix="/v1", route_class=OffLoopJsonRoute)


@router.post("/classify", tags=["classify"])
async def classify(request: ClassifyRequest, state: ReadyState) -> ClassifyResponse:
    """Classify one answer: the reason, the save offer to show, and the team to alert."""
    _check_text(request.text, "text", state.max_chars)
    [prediction] = await _predict(state, [request])
    answer = _answer(state, request, prediction)
    await _store(state, [request], [answer])
    return answer


@router.post("/classify/batch", tags=["classify"])
async def classify_batch(batch: BatchRequest, state: ReadyState, _: BatchSizeChecked) -> BatchResponse:
    """Classify up to `max_batch_items` answers; the answers come back in the order sent."""
    for i, item in enumerate(batch.items):
        _check_text(item.text, f"items.{i}.text", state.max_chars)
    predictions = await _predict(state, batch.items)
    answers = [_answer(state, item, p) for item, p in zip(batch.items, predictions, strict=True)]
    await _store(state, batch.items, answers)
    assert state.classifier is not None
    return BatchResponse(items=answers, model_version=state.classifier.version, request_id=request_id_var.get())


@router.get("/taxonomy", tags=["taxonomy"])
async def taxonomy(state: ReadyState) -> TaxonomyResponse:
    """The categories and sub-reasons the model predicts, with owner team and actionability."""
    assert state.classifier is not None
    data = state.classifier.taxonomy.model_dump(
        exclude={"categories": {"__all__": {"sub_reasons": {"__all__": {"examples"}}}}}
    )
    return TaxonomyResponse.model_validate({**data, "model_version": state.classifier.version})


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


def _answer(state: ServiceState, request: ClassifyRequest, prediction: Prediction) -> ClassifyResponse:
    """The answer to one item: the prediction, the offer and alert the offers file decides, the actionability."""
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
        actionability = Actionability(voluntary=sub_reason.voluntary, influenceable=sub_reason.influenceable)
    alert = None
    if decision.alert_team is not None:
        alert = AlertOut(
            team=decision.alert_team,
            category=prediction.category,
            sub_reason=prediction.sub_reason,
            customer_id=request.customer_id,
            plan=request.plan,
            mrr=request.mrr,
        )
    return ClassifyResponse(
        category=prediction.category,
        sub_reason=prediction.sub_reason,
        confidence=prediction.confidence,
        sub_reason_confidence=prediction.sub_reason_confidence,
        scores=prediction.scores,
        abstained=prediction.abstained,
        language=language,
        offer=OfferOut(
            id=decision.offer_id,
            kind=decision.offer.kind,
            message=decision.message,
            experiment=decision.experiment,
            variant=decision.variant,
        ),
        alert=alert,
        actionability=actionability,
        model_version=state.classifier.version,
        request_id=request_id_var.get(),
    )


async def _store(state: ServiceState, requests: list[ClassifyRequest], answers: list[ClassifyResponse]) -> None:
    """Hand the rows to the store's spool before the answer is sent: a 503 rather than an acknowledged, lost row.
    With `store_acknowledge = committed`, wait until they are in the database."""
    if state.store is None:
        return
    created = now()
    rows = []
    for item, (request, answer) in enumerate(zip(requests, answers, strict=True)):
        row = stored_row(request, answer, item, created)
        alert = _webhook_alert(state, request, answer, item, created)
        if alert is not None:
            row["alerts"] = [alert]  # written to the outbox in the answer's transaction
        rows.append(row)
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


def _webhook_alert(
    state: ServiceState, request: ClassifyRequest, answer: ClassifyResponse, item: int, created: datetime
) -> dict[str, Any] | None:
    """The webhook alert of one answer, as JSON for the store's outbox, when its team has a webhook."""
    team = answer.alert.team if answer.alert is not None else None
    destination = state.settings.webhooks.get(team) if team is not None else None
    if team is None or destination is None:
        return None
    alert = Alert(
        id=alert_id(answer.request_id, item, team),
        created_at=created,
        team=team,
        request_id=answer.request_id,
        item=item,
        customer_id=request.customer_id,
        plan=request.plan,
        mrr=request.mrr,
        category=answer.category,
        sub_reason=answer.sub_reason,
        confidence=answer.confidence,
        language=answer.language,
        offer=OfferRef(id=answer.offer.id, kind=answer.offer.kind.value),
        experiment=answer.offer.experiment,
        variant=answer.offer.variant,
        text=request.text if destination.include_text else None,
    )
    return alert.model_dump(mode="json")
