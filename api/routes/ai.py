"""The AI API (docs/ai.md): the Claude Code Tracker's endpoints, on its own paths and on ours.

Every endpoint answers on two paths: the seed's (``/api/projects``, ``/api/sessions/start``...),
with its bodies and its error shape (``{"error": true, "message", "code", "details"}``,
:func:`http_edge.errors.in_seed_style`), and ours (``/api/v1/ai/projects``...), whose answers are
wrapped as ``{"data": ...}`` and whose errors are in the envelope. Both authenticate like the rest
of the API (an API key or a login token; writes refuse a read-only key) and see only the caller's
data.

Writes are events: a write is appended to the log (:class:`schemas.events.AiActivityReceived`,
keyed by the user) before it is answered, and the projections show it once the projector has
read it (usually well under a second in ``serve``): reads are eventually consistent, and a
client that must see its write polls (what the tests do). The ids a write answers with are
deterministic, so a retry sends the same record again and it collapses.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency aliases
# when the routes are declared.

import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from accounts.directory import new_event_id
from api.deps import Log, Reader, Writer, api_parts
from api.routes.account_forms import json_body, parse
from api.routes.store_calls import blocking
from api.rules.ai import (
    activity_view,
    blocks_view,
    date_window,
    day_range,
    lines_view,
    message_view,
    moment,
    parse_search,
    plan_import,
    project_stats_view,
    project_view,
    search_hit_view,
    session_lengths_view,
    session_view,
    tool_call_view,
    tool_stats_view,
    usage_view,
)
from api.rules.ai_transcripts import plan_transcript, skipped_view
from eventlog.port import EventLog, Record
from http_edge.auth import Principal
from http_edge.body import parse_json, read_body
from http_edge.errors import ApiError, error_responses, seed_error_responses
from projections.ai import SessionOrigin, session_origins_in, stamped
from projections.ai_usage import PricingTable, billing_blocks, usage_report
from projections.ports import AiStore, ProjectionStoreError
from schemas.ai import (
    ASSISTANT,
    MAX_CONTENT,
    MAX_PARAMETERS,
    MAX_PATH,
    AiProject,
    AiRecord,
    AiSessionStart,
    file_activity_record,
    message_record,
    project_id_of,
    session_end_record,
    session_start_record,
    tool_call_record,
)
from schemas.events import HEARTBEATS_TOPIC, AiActivityReceived, encode_event

_log = logging.getLogger(__name__)

SEED = "/api"
OURS = "/api/v1/ai"
# Records per event when an import is appended: each event stays a modest log record.
IMPORT_CHUNK = 500
IMPORT_LIMIT = 32 * 1024 * 1024
WRITE_LIMIT = MAX_CONTENT * 4 + 64 * 1024  # a message of MAX_CONTENT characters, UTF-8


def _store(request: Request) -> AiStore:
    return cast(AiStore, api_parts(request).store)


Store = Annotated[AiStore, Depends(_store)]
router = APIRouter(tags=["ai"])


def _answer(request: Request, payload: Any, status: int = 200) -> JSONResponse:
    """The seed's bare payload on its paths, ``{"data": payload}`` on ours."""
    ours = request.url.path.startswith(OURS + "/")
    return JSONResponse({"data": payload} if ours else payload, status_code=status)


def _route(
    method: str, sub: str, summary: str, statuses: Sequence[int], **extra: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register an endpoint on the seed's path and on ours."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        for prefix, style, errors in (
            (SEED, "seed", seed_error_responses),
            (OURS, "ours", error_responses),
        ):
            router.add_api_route(
                prefix + sub,
                endpoint,
                methods=[method],
                summary=f"{summary} ({style})",
                responses=errors(401, *statuses, 503),
                operation_id=f"ai_{style}_{method.lower()}_{sub.strip('/').replace('/', '_').replace('-', '_').replace('{', '').replace('}', '')}",  # noqa: E501
                **extra,
            )
        return endpoint

    return register


# Where recently started sessions run, per app (the route that appends a start knows it before
# the projector does): most records of a session arrive within seconds of its start.
_ORIGINS_KEPT = 10_000


def _origin_cache(request: Request) -> "OrderedDict[tuple[str, str], SessionOrigin]":
    state = request.app.state
    cache = getattr(state, "ai_session_origins", None)
    if cache is None:
        cache = state.ai_session_origins = OrderedDict()
    return cast("OrderedDict[tuple[str, str], SessionOrigin]", cache)


def _remember(request: Request, user_id: str, records: Sequence[AiRecord]) -> None:
    """Keep where the sessions started among ``records`` run, for their later records."""
    _keep(_origin_cache(request), user_id, session_origins_in(records))


async def _stamp(request: Request, user_id: str, records: Sequence[AiRecord]) -> list[AiRecord]:
    """``records`` stamped with where their sessions run (:func:`projections.ai.stamped`): from
    a start among them, this app's recent starts, or the projections. A session found nowhere
    (not started, or its start not projected yet) leaves the record as the client sent it."""
    origins = session_origins_in(records)
    cache = _origin_cache(request)
    wanted = {
        r.session_id
        for r in records
        if not isinstance(r, AiProject | AiSessionStart)
        and r.session_id
        and (r.project_path is None or r.assistant is None)
        and r.session_id not in origins
    }
    for session_id in list(wanted):
        cached = cache.get((user_id, session_id))
        if cached is not None:
            origins[session_id] = cached
            wanted.discard(session_id)
    if wanted:
        store = cast(AiStore, api_parts(request).store)
        try:
            found = await run_in_threadpool(store.ai_session_origins, user_id, wanted)
        except ProjectionStoreError:
            _log.warning("AI records appended without their sessions' origins", exc_info=True)
            found = {}
        origins.update(found)
        _keep(cache, user_id, found)
    return [stamped(r, origins.get(getattr(r, "session_id", None) or "")) for r in records]


def _keep(
    cache: "OrderedDict[tuple[str, str], SessionOrigin]",
    user_id: str,
    origins: dict[str, SessionOrigin],
) -> None:
    for session_id, origin in origins.items():
        cache[(user_id, session_id)] = origin
        cache.move_to_end((user_id, session_id))
    while len(cache) > _ORIGINS_KEPT:
        cache.popitem(last=False)


async def _append(log: EventLog, principal: Principal, records: Sequence[AiRecord]) -> None:
    """Append ``records`` (in events of at most :data:`IMPORT_CHUNK`) durably, keyed by the
    user; only then may the request be answered."""
    user = principal.user
    events = [
        AiActivityReceived(
            event_id=new_event_id(),
            user_id=user.user_id,
            occurred_at=time.time(),
            records=tuple(records[start : start + IMPORT_CHUNK]),
            timezone=user.timezone,
        )
        for start in range(0, len(records), IMPORT_CHUNK)
    ]
    if events:
        key = user.user_id.encode()
        await log.append([Record(HEARTBEATS_TOPIC, key, encode_event(e)) for e in events])


# ---- bodies -----------------------------------------------------------------------------------

Text = Annotated[str, Field(min_length=1, max_length=200)]
PathText = Annotated[str, Field(min_length=1, max_length=MAX_PATH)]
When = str | float | None


class _Body(BaseModel):
    # Clients of the seed send fields of their own: ignored, as the seed does.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class SessionStartIn(_Body):
    project_path: PathText
    start_time: When = None
    user: Annotated[str, Field(max_length=200)] | None = None
    session_id: Text | None = None  # the client's own id (Claude Code's); else one is made
    assistant: Annotated[str, Field(min_length=1, max_length=100)] = ASSISTANT


class SessionEndIn(_Body):
    session_id: Text
    end_time: When = None


class ConversationIn(_Body):
    session_id: Text
    content: Annotated[str, Field(min_length=1, max_length=MAX_CONTENT)]
    role: Literal["user", "assistant"]
    timestamp: When = None
    project_path: PathText | None = None


class ActivityIn(_Body):
    session_id: Text
    file_path: PathText
    action: Literal["created", "modified", "deleted"]
    lines_added: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    lines_removed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    timestamp: When = None
    project_path: PathText | None = None


class ToolCallIn(_Body):
    tool_name: Text
    parameters: dict[str, Any] = Field(default_factory=dict)
    result_status: Annotated[str, Field(min_length=1, max_length=50)] = "success"
    execution_time_ms: Annotated[float, Field(ge=0, le=86_400_000)] | None = None
    timestamp: When = None
    session_id: Text | None = None
    project_path: PathText | None = None


def _now() -> float:
    return time.time()


# ---- projects -------------------------------------------------------------------------------


@_route("GET", "/projects", "Your AI projects with their totals", ())
async def list_projects(request: Request, principal: Reader, store: Store) -> JSONResponse:
    rows = await blocking(store.ai_projects, principal.user.user_id)
    return _answer(request, [project_view(row) for row in rows])


ProjectId = Annotated[int, Path(ge=1, le=2**53, description="the project id")]


async def _project(store: AiStore, principal: Principal, project_id: int) -> dict[str, Any]:
    rows = await blocking(store.ai_projects, principal.user.user_id, project_id)
    if not rows:
        raise ApiError(
            404,
            f"project {project_id} not found",
            code="project_not_found",
            details={"project_id": project_id},
        )
    return rows[0]


@_route("GET", "/projects/{project_id}", "One AI project, with its recent sessions", (404,))
async def get_project(
    request: Request, principal: Reader, store: Store, project_id: ProjectId
) -> JSONResponse:
    row = await _project(store, principal, project_id)
    sessions = await blocking(
        store.ai_sessions, principal.user.user_id, project_id=project_id, limit=20
    )
    return _answer(
        request, {**project_view(row), "recent_sessions": [session_view(s) for s in sessions]}
    )


@_route("GET", "/projects/{project_id}/stats", "An AI project's statistics and time series", (404,))
async def project_stats(
    request: Request, principal: Reader, store: Store, project_id: ProjectId
) -> JSONResponse:
    user = principal.user
    row = await _project(store, principal, project_id)
    series = await blocking(store.ai_project_series, user.user_id, project_id, user.timezone)
    tools = await blocking(store.ai_tool_stats, user.user_id, project_id=project_id)
    return _answer(request, project_stats_view(row, series, tools))


# ---- sessions -------------------------------------------------------------------------------


@_route(
    "POST",
    "/sessions/start",
    "Start an AI coding session",
    (400, 403, 413),
    status_code=201,
    openapi_extra=json_body(SessionStartIn),
)
async def start_session(request: Request, principal: Writer, log: Log) -> JSONResponse:
    body = await parse(request, SessionStartIn, limit=WRITE_LIMIT)
    user = principal.user
    started = moment(body.start_time, user.timezone, now=_now(), name="start_time")
    session_id = body.session_id or uuid.uuid4().hex
    record = session_start_record(
        user.user_id,
        session_id,
        body.project_path,
        started,
        client_user=body.user,
        assistant=body.assistant,
    )
    await _append(log, principal, [record])
    _remember(request, user.user_id, [record])
    payload = {
        "session_id": session_id,
        "project_id": project_id_of(user.user_id, body.project_path),
        "message": "Session started successfully",
    }
    return _answer(request, payload, 201)


@_route(
    "POST",
    "/sessions/end",
    "End an AI coding session",
    (400, 403, 413),
    openapi_extra=json_body(SessionEndIn),
)
async def end_session(request: Request, principal: Writer, log: Log) -> JSONResponse:
    body = await parse(request, SessionEndIn, limit=WRITE_LIMIT)
    user = principal.user
    ended = moment(body.end_time, user.timezone, now=_now(), name="end_time")
    end = session_end_record(user.user_id, body.session_id, ended)
    await _append(log, principal, await _stamp(request, user.user_id, [end]))
    return _answer(
        request, {"session_id": body.session_id, "message": "Session ended successfully"}
    )


Limit = Annotated[int | None, Query(ge=1, le=1000, description="maximum number of results")]
DateQ = Annotated[str | None, Query(description="a date (whole day, yours) or ISO 8601 time")]
ProjectQ = Annotated[int | None, Query(ge=1, le=2**53, description="only this project")]


@_route("GET", "/sessions", "Your AI sessions, newest first", (400,))
async def list_sessions(
    request: Request,
    principal: Reader,
    store: Store,
    project_id: ProjectQ = None,
    start_date: DateQ = None,
    end_date: DateQ = None,
    limit: Limit = None,
) -> JSONResponse:
    user = principal.user
    window = date_window(start_date, end_date, user.timezone)
    rows = await blocking(
        store.ai_sessions, user.user_id, project_id=project_id, window=window, limit=limit or 100
    )
    return _answer(request, [session_view(row) for row in rows])


# ---- conversations --------------------------------------------------------------------------


@_route(
    "POST",
    "/conversations",
    "Record a conversation message",
    (400, 403, 413),
    status_code=201,
    openapi_extra=json_body(ConversationIn),
)
async def record_message(request: Request, principal: Writer, log: Log) -> JSONResponse:
    body = await parse(request, ConversationIn, limit=WRITE_LIMIT)
    user = principal.user
    at = moment(body.timestamp, user.timezone, now=_now(), name="timestamp")
    record = message_record(
        user.user_id, body.session_id, body.role, body.content, at, project_path=body.project_path
    )
    await _append(log, principal, await _stamp(request, user.user_id, [record]))
    payload = {
        "id": record.id,
        "session_id": body.session_id,
        "message": "Conversation recorded successfully",
    }
    return _answer(request, payload, 201)


RoleQ = Annotated[
    Literal["user", "assistant"] | None, Query(description="only messages of this role")
]
SessionQ = Annotated[str | None, Query(max_length=200, description="only this session")]


@_route("GET", "/conversations", "Your conversation messages, newest first, by page", (400,))
async def list_messages(
    request: Request,
    principal: Reader,
    store: Store,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
    session_id: SessionQ = None,
    project_id: ProjectQ = None,
    role: RoleQ = None,
    start_date: DateQ = None,
    end_date: DateQ = None,
) -> JSONResponse:
    user = principal.user
    window = date_window(start_date, end_date, user.timezone)
    total, rows = await blocking(
        store.ai_messages,
        user.user_id,
        session_id=session_id,
        project_id=project_id,
        role=role,
        window=window,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    return _answer(
        request,
        {
            "conversations": [message_view(row) for row in rows],
            "total": total,
            "page": page,
            "per_page": per_page,
            "pages": -(-total // per_page),
        },
    )


@_route("GET", "/conversations/search", "Search your conversations, most relevant first", (400,))
async def search_messages(
    request: Request,
    principal: Reader,
    store: Store,
    q: Annotated[str | None, Query(max_length=500, description='words and "phrases"')] = None,
    project_id: ProjectQ = None,
    start_date: DateQ = None,
    end_date: DateQ = None,
    role: RoleQ = None,
    session_id: SessionQ = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> JSONResponse:
    user = principal.user
    query = parse_search(q)
    window = date_window(start_date, end_date, user.timezone)
    total, rows = await blocking(
        store.ai_messages,
        user.user_id,
        session_id=session_id,
        project_id=project_id,
        role=role,
        window=window,
        search=query,
        limit=limit,
        offset=offset,
    )
    return _answer(
        request,
        {
            "query": q,
            "results": [search_hit_view(row, query) for row in rows],
            "total": total,
            "limit": limit,
            "offset": offset,
        },
    )


# ---- activities -----------------------------------------------------------------------------


@_route(
    "POST",
    "/activities",
    "Record a file activity",
    (400, 403, 413),
    status_code=201,
    openapi_extra=json_body(ActivityIn),
)
async def record_activity(request: Request, principal: Writer, log: Log) -> JSONResponse:
    body = await parse(request, ActivityIn, limit=WRITE_LIMIT)
    user = principal.user
    at = moment(body.timestamp, user.timezone, now=_now(), name="timestamp")
    record = file_activity_record(
        user.user_id,
        body.session_id,
        body.file_path,
        body.action,
        at,
        lines_added=body.lines_added,
        lines_removed=body.lines_removed,
        project_path=body.project_path,
    )
    await _append(log, principal, await _stamp(request, user.user_id, [record]))
    payload = {"id": record.id, "message": "Activity recorded successfully"}
    return _answer(request, payload, 201)


@_route("GET", "/activities", "Your file activities, newest first", (400,))
async def list_activities(
    request: Request,
    principal: Reader,
    store: Store,
    session_id: SessionQ = None,
    project_id: ProjectQ = None,
    file_path: Annotated[str | None, Query(max_length=MAX_PATH)] = None,
    action: Annotated[Literal["created", "modified", "deleted"] | None, Query()] = None,
    start_date: DateQ = None,
    end_date: DateQ = None,
    limit: Limit = None,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> JSONResponse:
    user = principal.user
    rows = await blocking(
        store.ai_activities,
        user.user_id,
        session_id=session_id,
        project_id=project_id,
        file_path=file_path,
        action=action,
        window=date_window(start_date, end_date, user.timezone),
        limit=limit or 100,
        offset=offset,
    )
    return _answer(request, [activity_view(row) for row in rows])


# ---- tool calls -----------------------------------------------------------------------------


@_route(
    "POST",
    "/tool-calls",
    "Record a tool call",
    (400, 403, 413),
    status_code=201,
    openapi_extra=json_body(ToolCallIn),
)
async def record_tool_call(request: Request, principal: Writer, log: Log) -> JSONResponse:
    body = await parse(request, ToolCallIn, limit=WRITE_LIMIT)
    user = principal.user
    at = moment(body.timestamp, user.timezone, now=_now(), name="timestamp")
    parameters = json.dumps(body.parameters, sort_keys=True, ensure_ascii=False)
    if len(parameters) > MAX_PARAMETERS:
        raise ApiError(
            400,
            f"invalid parameters: at most {MAX_PARAMETERS} characters of JSON",
            code="validation_error",
            details={"fields": {"parameters": f"at most {MAX_PARAMETERS} characters of JSON"}},
        )
    record = tool_call_record(
        user.user_id,
        body.tool_name,
        at,
        session_id=body.session_id,
        parameters=parameters,
        result_status=body.result_status,
        execution_time_ms=body.execution_time_ms,
        project_path=body.project_path,
    )
    await _append(log, principal, await _stamp(request, user.user_id, [record]))
    return _answer(request, {"id": record.id, "message": "Tool call recorded successfully"}, 201)


@_route("GET", "/tool-calls/stats", "Tool usage: calls, success rate, p50/p95 time", (400,))
async def tool_stats(
    request: Request,
    principal: Reader,
    store: Store,
    project_id: ProjectQ = None,
    start_date: DateQ = None,
    end_date: DateQ = None,
) -> JSONResponse:
    user = principal.user
    stats = await blocking(
        store.ai_tool_stats,
        user.user_id,
        project_id=project_id,
        window=date_window(start_date, end_date, user.timezone),
    )
    return _answer(request, tool_stats_view(stats))


@_route("GET", "/tool-calls/session/{session_id}", "The tool calls of one session", ())
async def session_tool_calls(
    request: Request,
    principal: Reader,
    store: Store,
    session_id: Annotated[str, Path(min_length=1, max_length=200)],
) -> JSONResponse:
    rows = await blocking(store.ai_tool_calls, principal.user.user_id, session_id=session_id)
    return _answer(request, [tool_call_view(row) for row in rows])


# ---- import ---------------------------------------------------------------------------------


@_route(
    "POST",
    "/import/claude-data",
    "Import a claude.json (multipart `file`)",
    (400, 403, 413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                }
            },
        }
    },
)
async def import_claude_data(
    request: Request, principal: Writer, log: Log, store: Store
) -> JSONResponse:
    document = await _uploaded_json(request)
    user = principal.user
    plan = plan_import(user.user_id, document, timezone=user.timezone, now=_now())
    known = await blocking(store.ai_known_ids, user.user_id, [r.id for r in plan.records])
    fresh = [record for record in plan.records if record.id not in known]
    await _append(log, principal, await _stamp(request, user.user_id, fresh))
    _remember(request, user.user_id, fresh)
    counts = plan.counts(known)
    return _answer(request, {"success": True, **counts, "errors": plan.errors}, 200)


async def _uploaded_json(request: Request) -> Any:
    """The JSON of the multipart ``file`` field (or of a JSON body, for scripts)."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/json"):
        return parse_json(await read_body(request, IMPORT_LIMIT))
    if not kind.startswith("multipart/form-data"):
        raise ApiError(
            400,
            "send the claude.json as multipart/form-data, in the field `file`",
            code="invalid_upload",
            details={"file": "missing"},
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > IMPORT_LIMIT:
        raise ApiError(413, f"request body is larger than {IMPORT_LIMIT} bytes")
    async with request.form(max_files=1, max_fields=10, max_part_size=IMPORT_LIMIT) as form:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ApiError(
                400,
                "no file: send the claude.json in the multipart field `file`",
                code="invalid_upload",
                details={"file": "missing"},
            )
        raw = await upload.read(IMPORT_LIMIT + 1)
    if len(raw) > IMPORT_LIMIT:
        raise ApiError(413, f"the file is larger than {IMPORT_LIMIT} bytes")
    return parse_json(raw)


# ---- transcripts and token usage (ours only) --------------------------------------------------


def _ours(
    method: str, sub: str, summary: str, statuses: Sequence[int], **extra: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register an endpoint on our path only (the seed has no such endpoint)."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        router.add_api_route(
            OURS + sub,
            endpoint,
            methods=[method],
            summary=summary,
            responses=error_responses(401, *statuses, 503),
            operation_id=f"ai_ours_{method.lower()}_{sub.strip('/').replace('/', '_')}",
            **extra,
        )
        return endpoint

    return register


class TranscriptIn(_Body):
    model_config = ConfigDict(extra="ignore")  # the lines are kept as sent

    source: Literal["claude", "codex"]
    text: Annotated[str, Field(max_length=IMPORT_LIMIT)]
    first_line: Annotated[int, Field(ge=1)] = 1
    session_hint: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    project_hint: Annotated[str, Field(min_length=1, max_length=MAX_PATH)] | None = None


@_ours(
    "POST",
    "/import/transcript",
    "Import lines of a Claude Code or Codex session log",
    (400, 403, 413),
    openapi_extra=json_body(TranscriptIn),
)
async def import_transcript(
    request: Request, principal: Writer, log: Log, store: Store
) -> JSONResponse:
    body = await parse(request, TranscriptIn, limit=IMPORT_LIMIT + 64 * 1024)
    user = principal.user
    plan = await run_in_threadpool(
        plan_transcript,
        user.user_id,
        body.source,
        body.text,
        now=_now(),
        first_line=body.first_line,
        session_hint=body.session_hint,
        project_hint=body.project_hint,
    )
    unique = list({record.id: record for record in plan.records}.values())
    known = await blocking(store.ai_known_ids, user.user_id, [r.id for r in unique])
    fresh = [record for record in unique if record.id not in known]
    await _append(log, principal, await _stamp(request, user.user_id, fresh))
    _remember(request, user.user_id, fresh)
    imported: dict[str, int] = {}
    for record in fresh:
        imported[record.kind] = imported.get(record.kind, 0) + 1
    return _answer(
        request,
        {
            "imported": imported,
            "records": len(fresh),
            "duplicates": len(plan.records) - len(fresh),  # repeated in the lines, or known
            "already_imported": len(known),
            "skipped_lines": len(plan.skipped),
            "skipped": skipped_view(plan.skipped),
        },
    )


_SHIPPED_PRICING: list[PricingTable] = []


def _pricing(request: Request) -> PricingTable:
    """The deployment's pricing table, else the one shipped (read once)."""
    chosen = api_parts(request).ai_pricing
    if chosen is not None:
        return chosen
    if not _SHIPPED_PRICING:
        _SHIPPED_PRICING.append(PricingTable.load())
    return _SHIPPED_PRICING[0]


_USAGE_KEYS = {
    "daily": ("day", "date"),
    "monthly": ("month", "month"),
    "sessions": ("session", "session_id"),
    "projects": ("project", "project_id"),
    "models": ("model", "model"),
}


async def _usage(
    request: Request,
    principal: Principal,
    store: AiStore,
    report: str,
    start_date: str | None,
    end_date: str | None,
    project_id: int | None,
) -> JSONResponse:
    user = principal.user
    group, key_name = _USAGE_KEYS[report]
    rows = await blocking(
        store.ai_usage_sums,
        user.user_id,
        group,
        timezone=user.timezone,
        window=date_window(start_date, end_date, user.timezone),
        project_id=project_id,
    )
    view = usage_report(rows, _pricing(request), key_name=key_name)
    if report == "projects":
        projects = {p["project_id"]: p for p in await blocking(store.ai_projects, user.user_id)}
        named: dict[int, dict[str, Any]] = {}
        for entry in view["entries"]:
            pid = int(entry["project_id"])
            entry["project_id"] = pid or None
            named[pid] = projects.get(pid, {})
            entry["project_name"] = named[pid].get("name")
            entry["project_path"] = named[pid].get("path")
    if report == "sessions":
        sessions = {s["session_id"]: s for s in await blocking(store.ai_sessions, user.user_id)}
        for entry in view["entries"]:
            known = sessions.get(entry["session_id"], {})
            entry["project_id"] = known.get("project_id")
            entry["project_path"] = known.get("project_path")
            entry["assistant"] = known.get("assistant")
    return _answer(request, usage_view(view, report, user.timezone))


def _usage_route(report: str, summary: str) -> None:
    async def endpoint(
        request: Request,
        principal: Reader,
        store: Store,
        start_date: DateQ = None,
        end_date: DateQ = None,
        project_id: ProjectQ = None,
    ) -> JSONResponse:
        return await _usage(request, principal, store, report, start_date, end_date, project_id)

    endpoint.__name__ = f"usage_{report}"
    _ours("GET", f"/usage/{report}", summary, (400,))(endpoint)


_usage_route("daily", "Tokens and cost per day (your timezone)")
_usage_route("monthly", "Tokens and cost per month (your timezone)")
_usage_route("sessions", "Tokens and cost per AI session")
_usage_route("projects", "Tokens and cost per AI project")
_usage_route("models", "Tokens and cost per model")


@_ours("GET", "/usage/blocks", "Tokens and cost per 5-hour billing block", (400,))
async def usage_blocks(
    request: Request,
    principal: Reader,
    store: Store,
    start_date: DateQ = None,
    end_date: DateQ = None,
    project_id: ProjectQ = None,
) -> JSONResponse:
    user = principal.user
    entries = await blocking(
        store.ai_usage_entries,
        user.user_id,
        window=date_window(start_date, end_date, user.timezone),
        project_id=project_id,
    )
    blocks = billing_blocks(entries, _pricing(request), now_ms=round(_now() * 1000))
    return _answer(request, blocks_view(blocks))


@_ours("GET", "/lines", "Lines changed by the assistant and by hand, per day and project", (400,))
async def line_changes(
    request: Request,
    principal: Reader,
    store: Store,
    start_date: Annotated[str | None, Query(description="first day (2024-01-15)")] = None,
    end_date: Annotated[str | None, Query(description="last day, included")] = None,
) -> JSONResponse:
    first, last = day_range(start_date, end_date)
    rows = await blocking(store.ai_line_changes, principal.user.user_id, first, last)
    return _answer(request, lines_view(rows))


@_ours("GET", "/sessions/lengths", "How long AI sessions last: buckets and percentiles", (400,))
async def session_lengths(
    request: Request,
    principal: Reader,
    store: Store,
    project_id: ProjectQ = None,
    start_date: DateQ = None,
    end_date: DateQ = None,
) -> JSONResponse:
    user = principal.user
    sessions = await blocking(
        store.ai_sessions,
        user.user_id,
        project_id=project_id,
        window=date_window(start_date, end_date, user.timezone),
    )
    return _answer(request, session_lengths_view(sessions))
