"""The error a request answers with, free of any web framework so pure rules can raise it.

:mod:`http_edge.errors` turns it into the JSON envelope; rules in :mod:`api.rules` raise it for
bad input (a range that does not parse, an unknown insight type) without importing FastAPI.
"""

from __future__ import annotations

from typing import Any

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
    504: "timeout",
}


class ApiError(Exception):
    """Raise anywhere in a request to answer with the envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or STATUS_CODES.get(status, "error")
        self.message = message
        self.details = details or {}
        self.headers = headers
