"""One JSON error envelope for the whole HTTP API.

Every error response, whatever raised it, has the body::

    {"error": {"code": "<machine code>", "message": "<human text>", "details": {...}}}

Status codes (also in docs/api.md): 400 malformed JSON or invalid input (``details.fields`` names
each bad field), 401 missing or bad credentials, 403 not yours, 404 unknown path or resource,
405 wrong method, 409 conflict, 413 body too large, 429 too many requests, 503 the event log or
a store is unavailable (nothing was written; retry), 500 anything else (no internals revealed).

Routes raise and do not catch: :func:`install_error_handlers` registers one handler per error
class on the app (ingest and api alike), among them :class:`eventlog.port.LogError` → 503.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from eventlog.port import LogError
from http_edge.problem import STATUS_CODES as _CODES
from http_edge.problem import ApiError

__all__ = [
    "ApiError",
    "ErrorDetail",
    "ErrorEnvelope",
    "describe_validation_errors",
    "error_body",
    "error_response",
    "error_responses",
    "install_error_handlers",
    "log_unavailable",
]

_log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any]


class ErrorEnvelope(BaseModel):
    """The body of every error response (documents the envelope in OpenAPI)."""

    error: ErrorDetail


_WHEN = {
    400: "Malformed JSON (`invalid_json`) or invalid input (`validation_error`)",
    401: "Missing, malformed, unknown, revoked or expired credentials",
    403: "The resource belongs to someone else",
    404: "No such resource",
    409: "Conflict (`key_limit`: at most 5 API keys)",
    413: "Request body or item count over the limit",
    503: "The event log or the store is unavailable; nothing was changed; retry (`Retry-After`)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for a route: ``statuses`` and any other 4xx, all in the envelope."""
    documented: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorEnvelope, "description": _WHEN.get(status, _CODES[status])}
        for status in statuses
    }
    # Also keeps FastAPI from documenting its 422, which this API never sends (400 instead).
    documented["4XX"] = {"model": ErrorEnvelope, "description": "Any other client error"}
    return documented


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(
        error_body(error.code, error.message, error.details),
        status_code=error.status,
        headers=error.headers,
    )


def describe_validation_errors(errors: list[Any]) -> dict[str, str]:
    """Turn pydantic error dicts into ``{"field.path": "what is wrong"}``."""
    fields: dict[str, str] = {}
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        fields[".".join(loc) or "body"] = str(err.get("msg", "invalid"))
    return fields


def log_unavailable() -> ApiError:
    """The answer when the event log cannot be read or appended to: nothing was changed."""
    return ApiError(
        503, "the event log is unavailable; nothing was changed", headers={"Retry-After": "5"}
    )


def install_error_handlers(app: FastAPI) -> None:
    """One handler per error class, for every router of the app (ingest and api alike): routes
    raise, they do not catch and translate."""

    def answer(request: Request, error: ApiError) -> JSONResponse:
        # The code rides on the request for the metrics middleware (rejections by reason).
        request.state.error_code = error.code
        return error_response(error)

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return answer(request, exc)

    async def on_log_error(request: Request, exc: Exception) -> JSONResponse:
        # The log refused or could not take the request: a retry may succeed, so 503.
        assert isinstance(exc, LogError)
        return answer(request, log_unavailable())

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        fields = describe_validation_errors(list(exc.errors()))
        first = next(iter(fields.items()), ("body", "invalid"))
        return answer(
            request,
            ApiError(
                400,
                f"invalid {first[0]}: {first[1]}",
                code="validation_error",
                details={"fields": fields},
            ),
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        message = exc.detail if isinstance(exc.detail, str) else _CODES.get(exc.status_code, "")
        return answer(
            request, ApiError(exc.status_code, message, headers=dict(exc.headers or {}) or None)
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unhandled error on %s %s", request.method, request.url.path)
        return answer(request, ApiError(500, "internal server error"))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(LogError, on_log_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
