"""Ingest endpoints in both dialects.

CodeTrackr: ``POST /api/v1/heartbeat`` (one), ``/api/v1/heartbeats`` (many), ``/api/v1/import``.
WakaTime, under ``/api/v1`` and the alias bases of :mod:`http_edge.compat`:
``POST /users/{user}/heartbeats`` (object or array) and ``.../heartbeats.bulk`` with the per-item
``responses`` contract (valid items are appended and answered 201 each, invalid ones get their own
400 inside a 201; only when nothing is valid does the whole request fail);
``DELETE /users/{user}/heartbeats.bulk`` (appends a ``HeartbeatsDeleted``);
``POST /users/{user}/file_experts`` (no experts) and ``POST /plugins/errors`` (a diagnostics sink).
Every 2xx of a write is sent after the log acknowledged the append.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the locally defined
# dependency aliases (`CurrentPrincipal`) when the routes are declared.

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from http_edge.auth import Principal
from http_edge.body import read_json
from http_edge.compat import WAKAPI_WAKATIME_PREFIX, WAKATIME_ALIASES, include_aliased
from http_edge.errors import ApiError, error_responses
from ingest.appender import HeartbeatAppender
from ingest.normalize import (
    EARLIEST_DAY,
    LATEST_DAY,
    MAX_ID_LENGTH,
    ItemError,
    RequestMeta,
    codetrackr_item,
    dedupe,
    deletion_request,
    resolve_timezone,
    wakatime_item,
)
from schemas.heartbeat import (
    CATEGORIES,
    MAX_DURATION_SECONDS,
    MIN_TIME,
    CodeTrackrHeartbeatIn,
    Dialect,
    Heartbeat,
    HeartbeatFieldsIn,
    WakaTimeHeartbeatIn,
)
from schemas.wakatime import heartbeat_view

Authenticate = Callable[[Request], Awaitable[Principal]]

MAX_ITEMS_PER_REQUEST = 10_000
_log = logging.getLogger(__name__)


# -- OpenAPI: these routes read raw JSON (``read_json``), so their bodies are described by hand,
# from the same models that validate each item, plus the checks their validators make.


def _item_schema(model: type[HeartbeatFieldsIn]) -> dict[str, Any]:
    schema = model.model_json_schema()
    props = schema["properties"]
    props["time"]["description"] = (
        "Unix epoch seconds, from 2000-01-01 to at most a day in the future"
    )
    _bound(props["time"], MIN_TIME)
    props["category"]["anyOf"] = [{"enum": sorted(CATEGORIES)}, {"const": ""}, {"type": "null"}]
    if "duration" in props:
        _bound(props["duration"], 0, MAX_DURATION_SECONDS)
    return schema


def _bound(prop: dict[str, Any], minimum: float, maximum: float | None = None) -> None:
    for option in prop.get("anyOf", [prop]):
        if option.get("type") == "number":
            option["minimum"] = minimum
            if maximum is not None:
                option["maximum"] = maximum


def array_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item, "maxItems": MAX_ITEMS_PER_REQUEST}


def _header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "schema": {"type": "string"}, "description": description}


# Request headers `request_meta` reads (all optional).
HEADERS = [
    _header("Timezone", "IANA zone for the local day when the profile has none (WakaTime CLI)"),
    _header("User-Agent", "editor and OS, in the WakaTime CLI's format"),
    _header("X-Machine-Name", "the machine the heartbeats come from"),
]


def ingest_openapi(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """The JSON body (``schema``) and the headers of an ingest route, for ``openapi_extra``."""
    content = {"application/json": {"schema": schema}}
    body = {"required": True, "description": description, "content": content}
    return {"requestBody": body, "parameters": HEADERS}


_CODETRACKR_ITEM = _item_schema(CodeTrackrHeartbeatIn)
WAKATIME_ITEM = _item_schema(WakaTimeHeartbeatIn)
_ERRORS = error_responses(400, 401, 413, 503)
_WAKATIME_ERRORS = error_responses(400, 401, 403, 413, 503)
_DELETION = {
    "type": "object",
    "required": ["date", "ids"],
    "properties": {
        "date": {
            "type": "string",
            "format": "date",
            "description": f"the heartbeats' local day, {EARLIEST_DAY} to {LATEST_DAY}",
        },
        "ids": {
            "type": "array",
            "maxItems": MAX_ITEMS_PER_REQUEST,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
            "description": "the `id`s the write endpoints answered with",
        },
    },
}
_ANY_OBJECT = {"type": "object", "additionalProperties": True}


class DeletionAccepted(BaseModel):
    date: str
    ids: list[str]


class DeletionAnswer(BaseModel):
    """The deletion was durably recorded; stats reflect it once it is projected (moments)."""

    data: DeletionAccepted


class FileExpertsAnswer(BaseModel):
    data: list[dict[str, Any]]


class EmptyAnswer(BaseModel):
    pass


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def request_meta(request: Request, principal: Principal) -> RequestMeta:
    """What the request's headers and its caller tell about every heartbeat in it."""
    user = principal.user
    return RequestMeta(
        user_id=user.user_id,
        received_at=time.time(),
        timezone=resolve_timezone(
            user.timezone if user.timezone_set else None, request.headers.get("timezone")
        ),
        user_agent=request.headers.get("user-agent"),
        machine=request.headers.get("x-machine-name"),
    )


def as_list(body: Any) -> list[Any]:
    """The request's heartbeats: a JSON array of at most MAX_ITEMS_PER_REQUEST (400, 413)."""
    if not isinstance(body, list):
        raise ApiError(400, "expected a JSON array of heartbeats", code="validation_error")
    if len(body) > MAX_ITEMS_PER_REQUEST:
        raise ApiError(413, f"at most {MAX_ITEMS_PER_REQUEST} heartbeats per request")
    return body


def _raise_item_errors(errors: list[ItemError], single: bool) -> NoReturn:
    fields: dict[str, str] = {}
    for err in errors:
        for path, problem in err.fields.items():
            fields[path if single else f"{err.index}.{path}"] = problem
    first_path, first_problem = next(iter(fields.items()))
    raise ApiError(
        400,
        f"invalid {first_path}: {first_problem}",
        code="validation_error",
        details={"fields": fields},
    )


def build_ingest_router(
    authenticate: Authenticate,
    appender: HeartbeatAppender,
    *,
    body_limit: int,
    import_body_limit: int,
) -> APIRouter:
    router = APIRouter(tags=["ingest"])
    CurrentPrincipal = Annotated[Principal, Depends(authenticate)]

    async def codetrackr_batch(
        request: Request, principal: Principal, items: list[Any], source: Dialect, single: bool
    ) -> list[Heartbeat]:
        meta = request_meta(request, principal)
        results = [codetrackr_item(item, i, meta, source=source) for i, item in enumerate(items)]
        errors = [r for r in results if isinstance(r, ItemError)]
        if errors:
            _raise_item_errors(errors, single)
        accepted = dedupe([r for r in results if isinstance(r, Heartbeat)])
        await appender.append_for(principal.user, accepted)
        return accepted

    @router.post(
        "/api/v1/heartbeat",
        summary="Record one heartbeat (CodeTrackr dialect)",
        responses=_ERRORS,
        openapi_extra=ingest_openapi(_CODETRACKR_ITEM, "One heartbeat"),
    )
    async def heartbeat(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
        body = await read_json(request, body_limit)
        if not isinstance(body, dict):
            raise ApiError(400, "expected a JSON object", code="validation_error")
        accepted = await codetrackr_batch(request, principal, [body], "codetrackr", True)
        return {"status": "ok", "recorded_at": _iso(accepted[0].received_at)}

    @router.post(
        "/api/v1/heartbeats",
        summary="Record many heartbeats (CodeTrackr dialect)",
        responses=_ERRORS,
        openapi_extra=ingest_openapi(
            array_of(_CODETRACKR_ITEM), "Heartbeats; one invalid fails all"
        ),
    )
    async def heartbeats(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
        items = as_list(await read_json(request, body_limit))
        accepted = await codetrackr_batch(request, principal, items, "codetrackr", False)
        return {"status": "ok", "inserted": len(accepted)}

    @router.post(
        "/api/v1/import",
        summary="Import heartbeats from any tool",
        responses=_ERRORS,
        openapi_extra=ingest_openapi(
            array_of(_CODETRACKR_ITEM), "Heartbeats, `duration` default 60 s"
        ),
    )
    async def import_(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
        items = as_list(await read_json(request, import_body_limit))
        accepted = await codetrackr_batch(request, principal, items, "import", False)
        return {"status": "ok", "inserted": len(accepted)}

    router.include_router(_wakatime_router(authenticate, appender, body_limit=body_limit))
    return router


def _own(user: str, principal: Principal) -> None:
    """``{user}`` must name the caller: ``current`` or their username (any case)."""
    if user != "current" and user.lower() != principal.user.username.lower():
        raise ApiError(403, "you can only act on your own heartbeats")


def _wakatime_router(
    authenticate: Authenticate, appender: HeartbeatAppender, *, body_limit: int
) -> APIRouter:
    """The WakaTime write endpoints (paths relative to the WakaTime base), under every alias;
    under Wakapi's base the heartbeat posts are Wakapi's own (:mod:`ingest.wakapi`)."""
    posts = APIRouter(tags=["ingest"])
    waka = APIRouter(tags=["ingest"])
    CurrentPrincipal = Annotated[Principal, Depends(authenticate)]

    async def wakatime_write(
        request: Request, user: str, principal: Principal, *, bulk: bool
    ) -> JSONResponse:
        _own(user, principal)
        body = await read_json(request, body_limit)
        single = isinstance(body, dict) and not bulk
        items = [body] if single else as_list(body)
        meta = request_meta(request, principal)
        results = [wakatime_item(item, i, meta) for i, item in enumerate(items)]
        valid = [r for r in results if isinstance(r, Heartbeat)]
        if not valid:
            errors = [r for r in results if isinstance(r, ItemError)]
            if not errors:
                raise ApiError(400, "no heartbeats in request", code="validation_error")
            _raise_item_errors(errors, single)
        await appender.append_for(principal.user, dedupe(valid))
        if single:
            return JSONResponse({"data": heartbeat_view(valid[0])}, status_code=201)
        responses: list[list[Any]] = [
            [{"data": heartbeat_view(r)}, 201]
            if isinstance(r, Heartbeat)
            else [{"error": r.message}, 400]
            for r in results
        ]
        return JSONResponse({"responses": responses}, status_code=201)

    @posts.post(
        "/users/{user}/heartbeats",
        status_code=201,
        summary="Record heartbeats (WakaTime dialect; object or array)",
        responses=_WAKATIME_ERRORS,
        openapi_extra=ingest_openapi(
            {"anyOf": [WAKATIME_ITEM, array_of(WAKATIME_ITEM)]},
            "One heartbeat (answered with it) or an array (answered like `.bulk`)",
        ),
    )
    async def waka_heartbeats(
        request: Request, user: str, principal: CurrentPrincipal
    ) -> JSONResponse:
        return await wakatime_write(request, user, principal, bulk=False)

    @posts.post(
        "/users/{user}/heartbeats.bulk",
        status_code=201,
        summary="Record many heartbeats (WakaTime dialect)",
        responses=_WAKATIME_ERRORS,
        openapi_extra=ingest_openapi(
            array_of(WAKATIME_ITEM), "Heartbeats, each answered on its own in `responses`"
        ),
    )
    async def waka_bulk(request: Request, user: str, principal: CurrentPrincipal) -> JSONResponse:
        return await wakatime_write(request, user, principal, bulk=True)

    @waka.delete(
        "/users/{user}/heartbeats.bulk",
        status_code=202,
        response_model=DeletionAnswer,
        summary="Delete heartbeats of one local day (WakaTime dialect)",
        responses=_WAKATIME_ERRORS,
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "The local day and the ids of your heartbeats to delete; ids "
                "that are not yours or not of that day change nothing",
                "content": {"application/json": {"schema": _DELETION}},
            }
        },
    )
    async def waka_delete(
        request: Request, user: str, principal: CurrentPrincipal
    ) -> DeletionAnswer:
        _own(user, principal)
        body = await read_json(request, body_limit)
        ids = body.get("ids") if isinstance(body, dict) else None
        if isinstance(ids, list) and len(ids) > MAX_ITEMS_PER_REQUEST:
            raise ApiError(413, f"at most {MAX_ITEMS_PER_REQUEST} ids per request")
        parsed = deletion_request(body)
        if isinstance(parsed, ItemError):
            _raise_item_errors([parsed], single=True)
        await appender.append_deletion(principal.user.user_id, parsed.day, parsed.ids)
        return DeletionAnswer(data=DeletionAccepted(date=parsed.day.isoformat(), ids=[*parsed.ids]))

    @waka.post(
        "/users/{user}/file_experts",
        summary="Who knows a file best (WakaTime clients ask; CodeTrackr names no one)",
        response_model=FileExpertsAnswer,
        responses=error_responses(401, 403, 503),
        openapi_extra={
            "requestBody": {
                "required": False,
                "description": "The file, as wakatime-cli sends it (not read)",
                "content": {"application/json": {"schema": _ANY_OBJECT}},
            }
        },
    )
    async def waka_file_experts(user: str, principal: CurrentPrincipal) -> FileExpertsAnswer:
        _own(user, principal)
        return FileExpertsAnswer(data=[])

    @waka.post(
        "/plugins/errors",
        status_code=201,
        summary="Diagnostics from editor plugins (logged, not stored)",
        response_model=EmptyAnswer,
        responses=error_responses(400, 401, 413, 503),
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "A JSON object: wakatime-cli sends its version, platform, logs...",
                "content": {"application/json": {"schema": _ANY_OBJECT}},
            }
        },
    )
    async def plugin_errors(request: Request, principal: CurrentPrincipal) -> EmptyAnswer:
        report = await read_json(request, body_limit)
        if not isinstance(report, dict):
            raise ApiError(400, "expected a JSON object", code="validation_error")
        _log.info("plugin error report from user %s: %s", principal.user.user_id, _gist(report))
        return EmptyAnswer()

    outer = APIRouter()
    include_aliased(
        outer, posts, aliases=[a for a in WAKATIME_ALIASES if a != WAKAPI_WAKATIME_PREFIX]
    )
    include_aliased(outer, waka)
    return outer


# What a plugin error report's log line shows: who sent it, never its logs or stack (big, and
# full of the user's paths).
_GIST_FIELDS = ("plugin", "editor", "cli_version", "platform", "architecture", "is_panic")


def _gist(report: dict[str, Any]) -> str:
    shown = {k: str(report[k])[:100] for k in _GIST_FIELDS if k in report}
    return f"{shown} ({len(report)} fields)"
