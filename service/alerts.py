"""`GET /v1/alerts/dead` and `POST /v1/alerts/replay`: the alerts no receiver took, listed and sent again.

An alert is dead when its team's receiver refused it, or kept failing until `webhook_retry`'s
horizon. The list names alerts by id, team and request id with the last error; never the customer
or the answer. A replay makes them due at once, with a fresh horizon.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from reason_classifier.webhooks.outbox import Outbox

from .body import OffLoopJsonRoute
from .dependencies import StateDep
from .errors import ApiError
from .state import ServiceState

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], route_class=OffLoopJsonRoute)


class DeadAlert(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    alert_id: str
    team: str
    request_id: str
    created_at: datetime
    attempts: int
    last_status: int | None
    last_error: str | None


class DeadAlerts(BaseModel):
    alerts: list[DeadAlert]


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alert_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=10_000, description="The dead alerts to send again (default: all, or the team's)."
    )
    team: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class ReplayResponse(BaseModel):
    replayed: int


def _outbox(state: ServiceState) -> Outbox:
    """The store's alert outbox; 404 when no webhooks are configured (there are no alerts then). Checked in the
    route, after the request was validated: a malformed request is a 422 whatever the settings."""
    if state.outbox is None:
        raise ApiError(404, "no_webhooks", "no webhooks are configured (setting `webhooks`), so there are no alerts")
    return state.outbox


@router.get("/dead")
async def dead(
    state: StateDep,
    team: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> DeadAlerts:
    """The dead alerts, oldest first."""
    letters = await asyncio.to_thread(_outbox(state).dead, limit, team)
    return DeadAlerts(alerts=[DeadAlert.model_validate(letter) for letter in letters])


@router.post("/replay")
async def replay(body: ReplayRequest, state: StateDep) -> ReplayResponse:
    """Send dead alerts again (those named, a team's, or all), each with a fresh retry horizon."""
    count = await asyncio.to_thread(_outbox(state).replay, body.alert_ids, body.team)
    if state.dispatcher is not None:
        state.dispatcher.wake()
    return ReplayResponse(replayed=count)
