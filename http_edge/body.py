"""Reading JSON request bodies with a size limit, before any parsing happens."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from http_edge.errors import ApiError

DEFAULT_BODY_LIMIT = 2 * 1024 * 1024


async def read_json(request: Request, limit: int = DEFAULT_BODY_LIMIT) -> Any:
    """Return the parsed JSON body; 413 past ``limit`` bytes, 400 when it is not JSON.

    The limit is enforced while streaming, so a lying or absent Content-Length cannot make the
    server buffer more than ``limit`` bytes.
    """
    raw = await read_body(request, limit)
    if not raw.strip():
        raise ApiError(400, "request body is empty; expected JSON", code="invalid_json")
    return parse_json(raw)


async def read_body(request: Request, limit: int = DEFAULT_BODY_LIMIT) -> bytes:
    """The raw body; 413 past ``limit`` bytes, counted while streaming."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """``raw`` parsed as JSON; 400 ``invalid_json`` when it is not."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}", code="invalid_json") from None
    except (ValueError, RecursionError):
        # Integers past Python's digit limit, or nesting deeper than the parser's recursion.
        raise ApiError(
            400, "malformed JSON: a number is too long or nesting too deep", code="invalid_json"
        ) from None
