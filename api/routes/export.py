"""Your data is yours: downloads of everything CodeTrackr stores about you, streamed.

* ``GET /api/v1/export/json``: every heartbeat, as a JSON array.
* ``GET /api/v1/export/csv``: the same records as CSV, a header row and a row per heartbeat.
* ``GET /api/v1/users/current/export`` (Chronova's path): the GDPR export, one JSON document
  with the account, its API keys and sessions (never a secret or a hash), follows, messages
  received, leaderboard membership, daily and weekly stats, the archived account events, the
  plugin store's and the theme store's records of the user, their goals, the deleted
  heartbeats' ids, every heartbeat and the AI coding activity (docs/ai.md).
* ``GET /api/v1/export/ai/json``: the AI coding activity (projects, sessions, messages, file
  activities, tool calls, token usage), one JSON document of six arrays;
  ``GET /api/v1/export/ai/{table}.csv`` one of them as CSV (``projects``, ``sessions``,
  ``messages``, ``activities``, ``tool_calls``, ``usage``).

Formats: :mod:`api.rules.export`. Deleted heartbeats are never exported (the GDPR export lists their
ids and when they were deleted).

Constant memory. The store streams heartbeats in blocks (``stream_heartbeats``); each block is
read and formatted in a worker thread and sent before the next is read, so a download of
millions of rows holds one block (a few MB) at a time and the event loop never formats.
The store gives every stream a client of its own, so the blocks may be pulled from any thread.

Failures. The first chunk is read before the response starts: a store that cannot be reached is
a 503 in the error envelope. Later the status line is gone, so a failure aborts the connection
(no final chunk): a client sees an incomplete download, never a well-formed truncated file.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the locally defined
# dependency aliases when the routes are declared.

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, ParamSpec, Protocol, TypeVar

import anyio
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from accounts.goals import GoalBook
from accounts.plugins import PluginCatalog
from accounts.state import ApiKey, ContactMessage, Session, User
from accounts.themes import ThemeCatalog
from api.routes.store_calls import store_unavailable
from api.rules.export import (
    GDPR_FORMAT,
    GDPR_VERSION,
    HEARTBEAT_COLUMNS,
    account_event_section,
    csv_rows,
    daily_section,
    deletion_section,
    goal_section,
    heartbeat_record,
    iso,
    json_array,
    json_document,
    key_section,
    member_section,
    message_section,
    plugin_section,
    session_section,
    theme_section,
    user_section,
    weekly_section,
)
from http_edge.auth import Principal
from http_edge.errors import ApiError, error_responses
from plugin_host.host import KeyValue
from plugins_runtime.kv import KeyValueUnavailable
from projections.ai import AI_EXPORT_COLUMNS
from projections.ports import ExportStore, ProjectionStoreUnavailable
from schemas.heartbeat import Heartbeat

Authenticate = Callable[[Request], Awaitable[Principal]]
P = ParamSpec("P")
T = TypeVar("T")

# Every day a ClickHouse `Date` can hold: the daily stats of all time.
_FIRST_DAY, _LAST_DAY = date(1970, 1, 1), date(2149, 6, 6)
_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


class AccountData(Protocol):
    """What the GDPR export reads from the account directory (its current fold, no I/O)."""

    def keys_of(self, user_id: str) -> list[ApiKey]: ...

    def key_last_used(self, key_id: str) -> float | None: ...

    def sessions_of(self, user_id: str) -> list[Session]: ...

    def messages_of(self, user_id: str) -> list[ContactMessage]: ...

    def following_of(self, user_id: str) -> set[str]: ...

    def followers_of(self, user_id: str) -> set[str]: ...

    def users(self) -> list[User]: ...

    @property
    def plugins(self) -> PluginCatalog: ...

    @property
    def themes(self) -> ThemeCatalog: ...

    @property
    def goals(self) -> GoalBook: ...


class JsonDownload(StreamingResponse):
    media_type = "application/json"


class CsvDownload(StreamingResponse):
    media_type = "text/csv"


def _unavailable() -> ApiError:
    return store_unavailable("exports")


async def _blocking(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except ProjectionStoreUnavailable:
        raise _unavailable() from None


async def _close(chunks: Generator[bytes, None, None]) -> None:
    # Shielded: this also runs when the client went away and the response task is cancelled,
    # and a store stream must be closed (a chdb stream holds its connection until then).
    with anyio.CancelScope(shield=True):
        await run_in_threadpool(chunks.close)


async def _primed(chunks: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    """The chunks, the first one read now (a 503 if the store cannot be read), the rest as the
    response is sent. Each chunk is produced in a worker thread; waiting for one in the event
    loop lets a cancellation wait for it, so the generator is never closed while it runs."""
    try:
        first = await run_in_threadpool(next, chunks, None)
    except BaseException as exc:
        await _close(chunks)
        if isinstance(exc, ProjectionStoreUnavailable):
            raise _unavailable() from None
        raise

    async def rest() -> AsyncIterator[bytes]:
        try:
            chunk = first
            while chunk is not None:
                yield chunk
                chunk = await run_in_threadpool(next, chunks, None)
        finally:
            await _close(chunks)

    return rest()


def _attachment(principal: Principal, what: str, extension: str) -> dict[str, str]:
    name = _UNSAFE_IN_FILENAME.sub("_", principal.user.username) or "user"
    filename = f"codetrackr-{name}-{what}-{datetime.now(UTC).date().isoformat()}.{extension}"
    return {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    }


# The AI tables an export names (``ai_<name>`` in the GDPR document, ``<name>.csv`` alone).
AI_EXPORTS = ("projects", "sessions", "messages", "activities", "tool_calls", "usage")


def _ai_arrays(store: ExportStore, user_id: str) -> list[tuple[str, Iterator[bytes]]]:
    """One streamed JSON array per AI table, each read when its turn comes."""
    return [
        (f"ai_{name}", json_array(store.stream_ai_rows(user_id, f"ai_{name}"), end=""))
        for name in AI_EXPORTS
    ]


def _records(store: ExportStore, user_id: str) -> Iterator[list[dict[str, Any]]]:
    for block in store.stream_heartbeats(user_id):
        yield [heartbeat_record(record) for record in block]


# ---- OpenAPI: what the downloads hold ----------------------------------------------------------


def _heartbeat_schema() -> dict[str, Any]:
    fields = Heartbeat.model_json_schema()["properties"]
    properties: dict[str, Any] = {
        "id": {"type": "string", "description": "the heartbeat id (what deleting takes)"},
        "time": {"type": "number", "description": "epoch seconds"},
        "local_date": {"type": "string", "format": "date"},
    }
    for name in HEARTBEAT_COLUMNS[3:]:
        properties[name] = {k: v for k, v in fields[name].items() if k not in ("default", "title")}
    return {
        "type": "object",
        "properties": properties,
        "required": list(HEARTBEAT_COLUMNS),
        "additionalProperties": False,
    }


_HEARTBEAT = _heartbeat_schema()
_OBJECTS = {"type": "array", "items": {"type": "object"}}
_GDPR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "export": {"type": "object"},
        "user": {"type": "object"},
        "api_keys": _OBJECTS,
        "sessions": _OBJECTS,
        "following": _OBJECTS,
        "followers": _OBJECTS,
        "messages_received": _OBJECTS,
        "leaderboard": {"anyOf": [{"type": "object"}, {"type": "null"}]},
        "daily_stats": _OBJECTS,
        "weekly_stats": _OBJECTS,
        "account_events": _OBJECTS,
        "plugins": {"type": "object"},
        "themes": {"type": "object"},
        "goals": _OBJECTS,
        "deleted_heartbeats": _OBJECTS,
        "heartbeats": {"type": "array", "items": _HEARTBEAT},
    },
    "required": [
        "export",
        "user",
        "api_keys",
        "sessions",
        "following",
        "followers",
        "messages_received",
        "leaderboard",
        "daily_stats",
        "weekly_stats",
        "account_events",
        "plugins",
        "themes",
        "goals",
        "deleted_heartbeats",
        "heartbeats",
        *(f"ai_{name}" for name in AI_EXPORTS),
    ],
}
_GDPR_SCHEMA["properties"].update({f"ai_{name}": _OBJECTS for name in AI_EXPORTS})
_DISPOSITION = {
    "Content-Disposition": {
        "description": "attachment; filename=...",
        "schema": {"type": "string"},
    }
}


def _download(media_type: str, schema: dict[str, Any], description: str) -> dict[int | str, Any]:
    return {
        200: {
            "description": description,
            "content": {media_type: {"schema": schema}},
            "headers": _DISPOSITION,
        },
        **error_responses(401, 503),
    }


def build_export_router(
    authenticate: Authenticate,
    directory: AccountData,
    store: ExportStore,
    plugin_kv: KeyValue | None = None,
) -> APIRouter:
    """The export routes; ``plugin_kv`` (the plugins' key-value store) adds what plugins keep
    for the user to the GDPR export (None: a process that runs no plugins has none to add)."""
    router = APIRouter(tags=["export"])
    CurrentPrincipal = Annotated[Principal, Depends(authenticate)]

    @router.get(
        "/api/v1/export/json",
        summary="Every heartbeat you recorded, as a JSON array (streamed)",
        response_class=JsonDownload,
        responses=_download(
            "application/json",
            {"type": "array", "items": _HEARTBEAT},
            "A JSON array of heartbeats in time order",
        ),
    )
    async def export_json(principal: CurrentPrincipal) -> StreamingResponse:
        chunks = json_array(_records(store, principal.user.user_id))
        return JsonDownload(
            await _primed(chunks), headers=_attachment(principal, "heartbeats", "json")
        )

    @router.get(
        "/api/v1/export/csv",
        summary="Every heartbeat you recorded, as CSV (streamed)",
        response_class=CsvDownload,
        responses=_download(
            "text/csv",
            {"type": "string"},
            f"A header row ({', '.join(HEARTBEAT_COLUMNS)}), then one row per heartbeat",
        ),
    )
    async def export_csv(principal: CurrentPrincipal) -> StreamingResponse:
        chunks = csv_rows(_records(store, principal.user.user_id))
        return CsvDownload(
            await _primed(chunks), headers=_attachment(principal, "heartbeats", "csv")
        )

    @router.get(
        "/api/v1/users/current/export",
        summary="Everything stored about you, as one JSON document (GDPR; streamed)",
        response_class=JsonDownload,
        responses=_download(
            "application/json", _GDPR_SCHEMA, "The account, its keys, stats and heartbeats"
        ),
    )
    async def export_everything(principal: CurrentPrincipal) -> StreamingResponse:
        user = principal.user
        user_id = user.user_id
        try:
            key_values = await plugin_kv.dump_user(user_id) if plugin_kv else {}
        except KeyValueUnavailable as exc:
            raise _unavailable() from exc
        # The small sections are read before the first byte, so an unavailable store is a 503.
        member = await _blocking(store.leaderboard_member, user_id)
        daily = await _blocking(store.daily_rows, user_id, _FIRST_DAY, _LAST_DAY)
        weekly = await _blocking(store.weekly_rows_of, user_id)
        events = await _blocking(store.account_events_of, [user_id])
        names = {other.user_id: other.username for other in directory.users()}

        def people(user_ids: set[str]) -> list[dict[str, str | None]]:
            return [{"user_id": uid, "username": names.get(uid)} for uid in sorted(user_ids)]

        head = {
            "export": {
                "format": GDPR_FORMAT,
                "version": GDPR_VERSION,
                "exported_at": iso(datetime.now(UTC).timestamp()),
            },
            "user": user_section(user),
            "api_keys": [
                key_section(key, directory.key_last_used(key.key_id))
                for key in directory.keys_of(user_id)
            ],
            "sessions": [session_section(s) for s in directory.sessions_of(user_id)],
            "following": people(directory.following_of(user_id)),
            "followers": people(directory.followers_of(user_id)),
            "messages_received": [message_section(m) for m in directory.messages_of(user_id)],
            "leaderboard": member_section(member),
            "daily_stats": [daily_section(row) for row in daily],
            "weekly_stats": [weekly_section(row) for row in weekly],
            "account_events": [account_event_section(raw) for _, raw in events.get(user_id, [])],
            "plugins": plugin_section(directory.plugins, user_id, key_values),
            "themes": theme_section(directory.themes, user_id),
            "goals": [goal_section(goal) for goal in directory.goals.of(user_id)],
        }
        deletions = (
            [deletion_section(item) for item in block] for block in store.stream_deletions(user_id)
        )
        chunks = json_document(
            head,
            [
                ("deleted_heartbeats", json_array(deletions, end="")),
                ("heartbeats", json_array(_records(store, user_id), end="")),
                *_ai_arrays(store, user_id),
            ],
        )
        return JsonDownload(await _primed(chunks), headers=_attachment(principal, "export", "json"))

    @router.get(
        "/api/v1/export/ai/json",
        summary="Your AI coding activity: projects, sessions, messages, activities, tool calls",
        response_class=JsonDownload,
        responses=_download(
            "application/json",
            {
                "type": "object",
                "properties": {f"ai_{name}": _OBJECTS for name in AI_EXPORTS},
                "required": [f"ai_{name}" for name in AI_EXPORTS],
            },
            "One JSON object with an array per AI table, rows in time order",
        ),
    )
    async def export_ai_json(principal: CurrentPrincipal) -> StreamingResponse:
        chunks = json_document({}, _ai_arrays(store, principal.user.user_id))
        return JsonDownload(await _primed(chunks), headers=_attachment(principal, "ai", "json"))

    @router.get(
        "/api/v1/export/ai/{table}.csv",
        summary="One table of your AI coding activity as CSV",
        response_class=CsvDownload,
        responses=_download("text/csv", {"type": "string"}, "A header row, then one row each"),
    )
    async def export_ai_csv(
        principal: CurrentPrincipal,
        table: Annotated[
            Literal["projects", "sessions", "messages", "activities", "tool_calls", "usage"],
            Path(),
        ],
    ) -> StreamingResponse:
        name = f"ai_{table}"
        chunks = csv_rows(
            store.stream_ai_rows(principal.user.user_id, name), AI_EXPORT_COLUMNS[name]
        )
        return CsvDownload(
            await _primed(chunks), headers=_attachment(principal, f"ai-{table}", "csv")
        )

    return router
