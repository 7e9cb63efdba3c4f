"""Request and response bodies of the HTTP API; they are also its OpenAPI documentation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from .offers import OfferKind
from .text import clean, unencodable_at

LanguageTag = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)]


def _encodable(value: str) -> str:
    if not value.isascii() and (position := unencodable_at(value)) is not None:
        raise ValueError(f"not valid Unicode (a lone surrogate at character {position})")
    return value


Encodable = Annotated[str, AfterValidator(_encodable)]


class ClassifyRequest(BaseModel):
    """One answer from the cancel flow, with what the caller knows about the customer."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"text": "Too expensive for a team of three", "customer_id": "c-1042", "plan": "pro", "mrr": 79.0}
            ]
        },
    )

    text: str = Field(
        description=(
            "The customer's answer. Not empty or only whitespace; at most `max_chars` characters (5,000 by default)."
        )
    )
    customer_id: Encodable | None = Field(
        default=None, max_length=200, description="Carried into the alert and the stored row."
    )
    plan: Encodable | None = Field(
        default=None, max_length=100, description="The customer's plan; offers may depend on it."
    )
    mrr: float | None = Field(
        default=None,
        ge=0,
        le=1e12,
        allow_inf_nan=False,
        description="Monthly recurring revenue of the account; offers may depend on it.",
    )
    language: LanguageTag | None = Field(
        default=None,
        description=(
            "The answer's language if the caller knows it (BCP-47, e.g. 'pl', 'zh-Hant'); otherwise it is detected."
        ),
    )
    metadata: Annotated[dict[str, Any] | None, AfterValidator(clean)] = Field(
        default=None,
        description="Anything else to store with the answer (not used to classify); "
        "a lone surrogate in it is stored as U+FFFD.",
    )


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ClassifyRequest] = Field(
        min_length=1, description="At most `max_batch_items` answers (100 by default)."
    )


class OfferOut(BaseModel):
    id: str
    kind: OfferKind
    message: str = Field(description="In the answer's language where the offer has one, else the default language.")
    experiment: str | None = Field(default=None, description="The A/B experiment that chose this offer, if any.")
    variant: str | None = Field(
        default=None, description="The customer's variant of `experiment` (the same each time for a customer)."
    )


class AlertOut(BaseModel):
    """Whom to tell: the team that owns the reason, with the customer's id, plan and revenue."""

    team: str
    category: str
    sub_reason: str | None
    customer_id: str | None
    plan: str | None
    mrr: float | None


class Actionability(BaseModel):
    voluntary: bool = Field(description="False when the customer did not choose to leave (a failed card).")
    influenceable: bool = Field(description="True when an offer or a fix could keep the customer.")


class ClassifyResponse(BaseModel):
    category: str = Field(description="product, pricing, support, market, or other when the model is unsure.")
    sub_reason: str | None
    confidence: float | None = Field(
        description="Probability that `category` is right (when abstained: that the best guess would be wrong)."
    )
    sub_reason_confidence: float | None
    scores: dict[str, float] = Field(description="Probability of each category, summing to 1.")
    abstained: bool
    language: str | None
    offer: OfferOut
    alert: AlertOut | None
    actionability: Actionability | None
    model_version: str
    request_id: str


_STORED_ANSWER = {
    "category",
    "sub_reason",
    "confidence",
    "sub_reason_confidence",
    "scores",
    "abstained",
    "language",
    "model_version",
}


def stored_row(request: ClassifyRequest, answer: ClassifyResponse, item: int, created_at: datetime) -> dict[str, Any]:
    """The `classified_answers` row of one answer (answer_store_schema.py): what the caller sent, as sent
    (its language hint as `language_given`), and what the service answered, with the offer's id and the
    alerted team, the offer's kind and its experiment's variant; `item` is the answer's place in its request."""
    return {
        "created_at": created_at,
        "request_id": answer.request_id,
        "item": item,
        **request.model_dump(include={"text", "customer_id", "plan", "mrr", "metadata"}),
        "language_given": request.language,
        **answer.model_dump(include=_STORED_ANSWER),
        "offer_id": answer.offer.id,
        "offer_kind": answer.offer.kind.value,
        "experiment": answer.offer.experiment,
        "variant": answer.offer.variant,
        "alert_team": answer.alert.team if answer.alert is not None else None,
    }


class BatchResponse(BaseModel):
    items: list[ClassifyResponse] = Field(description="One answer per item, in the order sent.")
    model_version: str
    request_id: str


class SubReasonOut(BaseModel):
    description: str
    owner: str
    voluntary: bool
    influenceable: bool


class CategoryOut(BaseModel):
    description: str
    sub_reasons: dict[str, SubReasonOut]


class TaxonomyResponse(BaseModel):
    version: int
    categories: dict[str, CategoryOut]
    model_version: str


class StoreStatus(BaseModel):
    """The answer store's health: rows acknowledged but not yet in the database wait in the spool."""

    status: str = Field(
        description="ok; retrying while the database cannot be written; starting before the first write."
    )
    pending_rows: int = Field(description="Acknowledged answers in the spool, not yet in the database.")
    written_rows: int
    rejected_rows: int = Field(
        description="Answers the database refused on their own, kept in the spool's rejected.jsonl."
    )
    spool: str
    detail: str | None = None


class Status(BaseModel):
    status: str
    model_version: str | None = None
    detail: str | None = None
    store: StoreStatus | None = None


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. invalid_text, body_too_large, timeout.")
    message: str = Field(description="What was wrong, for a person.")
    field: str | None = Field(default=None, description="Dotted path of the offending field, e.g. items.3.text.")
    limit: int | float | None = Field(default=None, description="The limit that was exceeded, when there is one.")
    request_id: str


class ErrorResponse(BaseModel):
    error: ErrorDetail
