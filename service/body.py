"""JSON request bodies parsed off the event loop when they are large.

The event loop answers every request of the process: a 1 MiB body of 60,000 tiny items takes tens
of milliseconds to parse and far longer to validate, and two dozen of them at once froze normal
requests for seconds. FastAPI parses the body with `await request.json()`; the routes of this
service get a request whose `json()` runs `json.loads` in a worker thread above `OFF_LOOP_BYTES`,
and the batch route counts its items (`batch_size_within`) before pydantic validates any of them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

OFF_LOOP_BYTES = 64 * 1024


def parse_json(body: bytes) -> Any:
    return json.loads(body)


class _OffLoopJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_parsed"):
            body = await self.body()
            self._parsed = await asyncio.to_thread(parse_json, body) if len(body) > OFF_LOOP_BYTES else parse_json(body)
        return self._parsed


class OffLoopJsonRoute(APIRoute):
    """An APIRoute whose handler sees `_OffLoopJsonRequest`; everything else is FastAPI's."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(_OffLoopJsonRequest(request.scope, request.receive))

        return route


async def item_count(request: Request, key: str) -> int | None:
    """How many entries the JSON body's list `key` has, without validating them; None if the body
    is not such an object (validation then says what is wrong)."""
    try:
        data = await request.json()
    except ValueError:
        return None
    items = data.get(key) if isinstance(data, dict) else None
    return len(items) if isinstance(items, list) else None
