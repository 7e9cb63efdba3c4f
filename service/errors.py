"""Every error the service returns has one shape: {"error": {code, message, field, limit, request_id}}."""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("service")

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_HTTP_CODES = {
    400: "invalid_json",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "body_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """An error with its HTTP status, a stable code, a message for a person, and the field and limit involved."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        limit: int | float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.limit = status, code, message, field, limit
        self.headers = headers


def error_body(code: str, message: str, field: str | None = None, limit: int | float | None = None) -> dict[str, Any]:
    return {
        "error": {"code": code, "message": message, "field": field, "limit": limit, "request_id": request_id_var.get()}
    }


def log_refusal(status: int, code: str, field: str | None, reason: str | None = None) -> None:
    """One line for each refused request: its status, code, field and the validator's reason (`string_too_long`),
    never the message (it may quote what was sent)."""
    if log.isEnabledFor(logging.INFO):
        fields = {"status": status, "code": code, "field": field, "reason": reason}
        where = f" at {field}" if field else ""
        log.info("refused %d %s%s%s", status, code, where, f" ({reason})" if reason else "", extra=fields)


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    limit: int | float | None = None,
    headers: dict[str, str] | None = None,
    reason: str | None = None,
) -> JSONResponse:
    log_refusal(status, code, field, reason)
    return JSONResponse(error_body(code, message, field, limit), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return error_response(error.status, error.code, error.message, error.field, error.limit, error.headers)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    """Pydantic's first problem, named by its dotted field (`items.3.text`) and its limit when there is one."""
    assert isinstance(error, RequestValidationError)
    problems = error.errors()
    first: dict[str, Any] = problems[0] if problems else {"loc": ("body",), "msg": "invalid request", "type": "invalid"}
    location = [str(part) for part in first.get("loc", ())]
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return error_response(
            400, "invalid_json", f"the body is not valid JSON{': ' + detail if detail else ''}", "body"
        )
    if location[:1] == ["body"]:
        location = location[1:]
    field = ".".join(location) or "body"
    limits = {
        k: v for k, v in (first.get("ctx") or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    limit = next(iter(limits.values()), None)
    message = f"{field}: {first.get('msg', 'invalid value')}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s))"
    return error_response(422, "invalid_request", message, field, limit, reason=str(first.get("type")))


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, "http_error")
    message = error.detail if isinstance(error.detail, str) else "request refused"
    field = "body" if error.status_code in (400, 413, 415) else None  # FastAPI's 400 is a body it could not decode
    return error_response(error.status_code, code, message, field, headers=getattr(error, "headers", None))
