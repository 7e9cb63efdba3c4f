"""JSON responses sent as the routes built them, shared by the classify and the trends routes."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Response


def json_response(body: dict[str, Any]) -> Response:
    """The response as built (its shape is the route's response_model, tested), without FastAPI validating it again."""
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), media_type="application/json")
