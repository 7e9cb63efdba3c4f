"""What an alert says: the customer, the reason and the offer, as the JSON body a team's receiver gets
(or as a Slack message). The answer's text is in it only when the destination says so."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .destinations import WebhookDestination, WebhookFormat

ALERT_TYPE: Literal["churn_reason.alert"] = "churn_reason.alert"


class OfferRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    kind: str


class Alert(BaseModel):
    """One alert to one team. `id` is the idempotency key: the same for every retry of this alert."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: Literal["churn_reason.alert"] = ALERT_TYPE
    created_at: datetime
    team: str
    request_id: str
    item: int = 0
    customer_id: str | None = None
    plan: str | None = None
    mrr: float | None = None
    category: str
    sub_reason: str | None = None
    confidence: float | None = None
    language: str | None = None
    offer: OfferRef | None = None
    experiment: str | None = None
    variant: str | None = None
    text: str | None = None


def alert_id(request_id: str, item: int, team: str) -> str:
    """The alert's id, derived from what it is about: an alert written twice (a replay after a crash) keeps
    its id, so the receiver still sees one alert."""
    digest = hashlib.sha256(f"{request_id}\x00{item}\x00{team}".encode()).hexdigest()
    return f"alert_{digest[:24]}"


def render_body(alert: Alert, destination: WebhookDestination) -> bytes:
    """The bytes to send (and sign): the alert as JSON, or a Slack message; the text only if configured."""
    if not destination.include_text and alert.text is not None:
        alert = alert.model_copy(update={"text": None})
    if destination.format == WebhookFormat.slack:
        data: dict[str, object] = {"text": slack_text(alert)}
    else:
        data = alert.model_dump(mode="json", exclude={"text"} if alert.text is None else set())
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def slack_text(alert: Alert) -> str:
    """One Slack message (mrkdwn) with what the team needs to act."""
    reason = _escape(alert.category + (f" / {alert.sub_reason}" if alert.sub_reason else ""))
    customer = f"`{_escape(alert.customer_id)}`" if alert.customer_id else "a customer"
    facts = [
        f"plan {_escape(alert.plan)}" if alert.plan else None,
        f"MRR {alert.mrr:,.2f}" if alert.mrr is not None else None,
    ]
    known = ", ".join(f for f in facts if f)
    lines = [
        f"*Churn alert for {_escape(alert.team)}*: {customer}{f' ({known})' if known else ''} is leaving: {reason}"
    ]
    details = []
    if alert.confidence is not None:
        details.append(f"confidence {alert.confidence:.2f}")
    if alert.language:
        details.append(f"language {_escape(alert.language)}")
    if alert.offer is not None:
        details.append(f"offer {_escape(alert.offer.id)} ({_escape(alert.offer.kind)})")
    if alert.variant:
        details.append(f"variant {_escape(alert.variant)} of {_escape(alert.experiment or '')}")
    details.append(f"request {_escape(alert.request_id)}")
    lines.append(", ".join(details))
    if alert.text:
        lines.append("> " + _escape(alert.text).replace("\n", "\n> "))
    return "\n".join(lines)


def _escape(text: str) -> str:
    """Slack's three control characters; everything else is shown as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
