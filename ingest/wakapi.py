"""Wakapi's heartbeat endpoints, so an editor configured for a Wakapi server sends here unchanged.

Wakapi users have ``api_url = https://<host>/api`` in their WakaTime config; wakatime-cli appends
``/users/current/heartbeats.bulk`` to it, older clients and scripts post to Wakapi's other
spellings. Every one of these takes one heartbeat object or an array of them, in WakaTime's
dialect, and answers as Wakapi does: **201** ``{"responses": [[{"data", "error"}, status],
...]}``, one pair per item in order, whatever the path (a single object too):

* ``POST /api/heartbeat``, ``/api/heartbeats``, ``/api/users/{user}/heartbeats``,
  ``/api/users/{user}/heartbeats.bulk`` (in the OpenAPI schema);
* ``POST /api/compat/wakatime/v1/users/{user}/heartbeats`` and ``.bulk`` (Wakapi's base for
  WakaTime clients);
* ``POST /api``: what the legacy Python ``wakatime`` client posts to with Wakapi's documented
  ``api_url`` (it uses the URL verbatim). Wakapi itself does not answer it; CodeTrackr does, so
  that configuration works too.

``/api/v1/users/{user}/heartbeats(.bulk)`` stay WakaTime's (:mod:`ingest.routes`): their bulk
answer has the same shape, and a single object there is answered ``{"data": heartbeat}`` as
WakaTime does.

The pipeline is the WakaTime one: :func:`ingest.normalize.wakatime_item` per item, the
:class:`ingest.appender.HeartbeatAppender` append (acknowledged by the log before the 201). A
valid item is answered ``[{"data": <heartbeat>, "error": null}, 201]`` (Wakapi leaves ``data``
empty; CodeTrackr gives the stored heartbeat, its ``id`` included), an invalid one
``[{"data": null, "error": "<why>"}, 400]``; when no item is valid the request is a 400 in the
error envelope. ``{user}`` is ``current`` or the caller's username; another name is a 401, as
Wakapi answers it.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the locally defined
# dependency aliases (`CurrentPrincipal`) when the routes are declared.

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from http_edge.auth import Principal
from http_edge.body import read_json
from http_edge.compat import WAKAPI_WAKATIME_PREFIX
from http_edge.errors import ApiError, error_responses
from ingest.appender import HeartbeatAppender
from ingest.normalize import ItemError, dedupe, wakatime_item
from ingest.routes import (
    MAX_ITEMS_PER_REQUEST,
    WAKATIME_ITEM,
    array_of,
    as_list,
    ingest_openapi,
    request_meta,
)
from schemas.heartbeat import Heartbeat
from schemas.wakatime import heartbeat_view

Authenticate = Callable[[Request], Awaitable[Principal]]

# Paths without ``{user}`` (the caller's own heartbeats), and with it; each pair: in the schema?
WAKAPI_PATHS: tuple[tuple[str, bool], ...] = (
    ("/api/heartbeat", True),
    ("/api/heartbeats", True),
    ("/api", False),
)
WAKAPI_USER_PATHS: tuple[tuple[str, bool], ...] = (
    ("/api/users/{user}/heartbeats", True),
    ("/api/users/{user}/heartbeats.bulk", True),
    (f"{WAKAPI_WAKATIME_PREFIX}/users/{{user}}/heartbeats", False),
    (f"{WAKAPI_WAKATIME_PREFIX}/users/{{user}}/heartbeats.bulk", False),
)


class WakapiItemAnswer(BaseModel):
    data: dict[str, Any] | None
    error: str | None


class WakapiAnswer(BaseModel):
    """One ``[answer, status]`` pair per item, in the order sent."""

    responses: list[tuple[WakapiItemAnswer, int]]


def bulk_answer(results: list[Heartbeat | ItemError]) -> dict[str, Any]:
    """Pure: Wakapi's ``responses`` for the per-item results of one request."""
    return {
        "responses": [
            [{"data": heartbeat_view(r), "error": None}, 201]
            if isinstance(r, Heartbeat)
            else [{"data": None, "error": r.message}, 400]
            for r in results
        ]
    }


def _named_user(user: str, principal: Principal) -> None:
    """``{user}`` must name the caller; Wakapi answers anybody else 401."""
    if user != "current" and user.lower() != principal.user.username.lower():
        raise ApiError(401, "you can only send your own heartbeats (user 'current')")


_OPENAPI = ingest_openapi(
    {"anyOf": [WAKATIME_ITEM, array_of(WAKATIME_ITEM)]},
    "One heartbeat or an array; each is answered on its own in `responses`",
)


def build_wakapi_ingest_router(
    authenticate: Authenticate, appender: HeartbeatAppender, *, body_limit: int
) -> APIRouter:
    router = APIRouter(tags=["wakapi"])
    CurrentPrincipal = Annotated[Principal, Depends(authenticate)]

    async def write(request: Request, principal: Principal) -> JSONResponse:
        body = await read_json(request, body_limit)
        items = [body] if isinstance(body, dict) else as_list(body)
        meta = request_meta(request, principal)
        results = [wakatime_item(item, i, meta) for i, item in enumerate(items)]
        valid = [r for r in results if isinstance(r, Heartbeat)]
        if not valid:
            errors = {
                f"{r.index}.{path}": problem
                for r in results
                if isinstance(r, ItemError)
                for path, problem in r.fields.items()
            }
            raise ApiError(
                400,
                "no valid heartbeat object given",
                code="validation_error",
                details={"fields": errors},
            )
        await appender.append_for(principal.user, dedupe(valid))
        return JSONResponse(bulk_answer(results), status_code=201)

    async def own_heartbeats(request: Request, principal: CurrentPrincipal) -> JSONResponse:
        return await write(request, principal)

    async def user_heartbeats(
        request: Request, user: str, principal: CurrentPrincipal
    ) -> JSONResponse:
        _named_user(user, principal)
        return await write(request, principal)

    errors = error_responses(400, 401, 403, 413, 503)
    described = f"Record heartbeats (Wakapi; up to {MAX_ITEMS_PER_REQUEST} per request)"
    for path, listed in WAKAPI_PATHS:
        router.post(
            path,
            status_code=201,
            summary=described,
            response_model=WakapiAnswer,
            responses=errors,
            include_in_schema=listed,
            openapi_extra=_OPENAPI,
        )(own_heartbeats)
    for path, listed in WAKAPI_USER_PATHS:
        router.post(
            path,
            status_code=201,
            summary=described,
            response_model=WakapiAnswer,
            responses=errors,
            include_in_schema=listed,
            openapi_extra=_OPENAPI,
        )(user_heartbeats)
    return router
