"""The plugin editor's runner: ``POST /api/v1/plugins/editor/run``.

Runs a server script that is not published (the editor's text) once, in the real sandbox, for
the caller: a lifecycle hook (``on_heartbeat`` with a mock heartbeat, ``on_tick``,
``on_install``) or an RPC handler with a body. ``ctx`` is bound to the caller's own data exactly
as for an installed plugin; its key-value namespace is the editor's own (``editor``, a name no
store plugin can have), so trying a script never touches an installed plugin's data.

The answer is always 200 with what happened: ``ok``, ``exit_status`` (0 or 1), the failure
``kind``, ``message`` and ``stack`` if it failed, the hook's ``result``, every ``log``/``warn``/
``error`` line, and the CPU and wall time used. 503 when our database or key-value store could
not be reached. Needs a login token or an API key that may write (the script may write).

With ``Accept: application/x-ndjson`` the answer streams instead (the editor's output pane): one
JSON object a line, ``{"type": "log", "level", "text"}`` for each line as the script logs it,
then one ``{"type": "done", ...}`` with the fields above, or ``{"type": "error", "error": {code,
message, details}}`` (the error envelope) when the run could not happen (the 503 above). A
request refused before the run starts (400, 401, 403, 413) is answered as usual.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency aliases.

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from accounts.plugins import StorePlugin
from api.deps import Plugins, Writer
from api.routes.account_forms import json_body, parse
from api.routes.plugin_store import RESERVED_NAMES
from http_edge.errors import ApiError, error_body, error_responses
from plugin_host.executor import PluginExecutor, PluginHostUnavailable
from plugins_runtime import (
    HookCall,
    Invocation,
    LifecycleHook,
    LogLine,
    RpcCall,
    SandboxFailure,
    SandboxResult,
    sanitize_handler_name,
)

EDITOR_PLUGIN = "editor"  # a reserved name: no store plugin can have it
assert EDITOR_PLUGIN in RESERVED_NAMES
MAX_SCRIPT = 256 * 1024
EDITOR_BODY_LIMIT = 1024 * 1024
NDJSON = "application/x-ndjson"
UNAVAILABLE = "the plugin's database or key-value store is unavailable; retry"
router = APIRouter(tags=["plugins"])


class EditorRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    server_script: str = Field(max_length=MAX_SCRIPT, description="the script to run")
    trigger: Literal["on_heartbeat", "on_tick", "on_install", "rpc"] = "on_heartbeat"
    handler: str = Field(default="", max_length=200, description="the RPC handler (rpc only)")
    body: Any = Field(default=None, description="the RPC body (rpc only; default {})")
    heartbeat: dict[str, Any] | None = Field(
        default=None, description="the on_heartbeat event (default: a mock heartbeat)"
    )


def mock_heartbeat(now: float) -> dict[str, Any]:
    """What ``on_heartbeat`` gets when the editor sends none (the shape of a real one)."""
    return {
        "project": "codetrackr",
        "language": "Python",
        "file": "src/main.py",
        "editor": "VS Code",
        "branch": "main",
        "os": "Linux",
        "machine": "laptop",
        "duration": 30,
        "time": now,
        "id": "editor-mock",
        "entity": "src/main.py",
        "type": "file",
        "category": "coding",
        "is_write": False,
        "lines": 120,
        "line_additions": 4,
        "line_deletions": 1,
        "source": "editor",
    }


def invocation(body: EditorRunIn, now: float) -> Invocation:
    if body.trigger == "rpc":
        handler = sanitize_handler_name(body.handler)
        if not handler:
            raise ApiError(
                400,
                "name the RPC handler to call",
                code="validation_error",
                details={"fields": {"handler": "required for rpc"}},
            )
        return RpcCall(handler=handler, body={} if body.body is None else body.body)
    if body.trigger == "on_heartbeat":
        return HookCall(LifecycleHook.ON_HEARTBEAT, body.heartbeat or mock_heartbeat(now))
    return HookCall(LifecycleHook(body.trigger))


def answer_of(result: SandboxResult) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "ok": result.ok,
        "exit_status": 0 if result.ok else 1,
        "logs": [{"level": line.level, "text": line.text} for line in result.logs],
        "cpu_s": round(result.cpu_s, 4),
        "wall_s": round(result.wall_s, 4),
        "host_calls": result.host_calls,
    }
    if isinstance(result, SandboxFailure):
        answer.update(kind=result.kind.value, message=result.message, stack=result.stack)
    else:
        answer["result"] = result.result
    return answer


def _line(item: dict[str, Any]) -> bytes:
    return json.dumps(item, separators=(",", ":")).encode() + b"\n"


async def stream_run(
    executor: PluginExecutor, plugin: StorePlugin, user_id: str, call: Invocation
) -> AsyncIterator[bytes]:
    """The NDJSON answer: log lines while the script runs, then how it ended. If the client
    goes away, the run is cancelled (the sandbox stops it)."""
    lines: asyncio.Queue[LogLine | None] = asyncio.Queue()
    run = asyncio.ensure_future(executor.run(plugin, user_id, call, on_log=lines.put_nowait))
    run.add_done_callback(lambda _: lines.put_nowait(None))
    try:
        while (line := await lines.get()) is not None:
            yield _line({"type": "log", "level": line.level, "text": line.text})
        try:
            result = run.result()
        except PluginHostUnavailable:
            yield _line({"type": "error", **error_body("unavailable", UNAVAILABLE)})
            return
        yield _line({"type": "done", **answer_of(result)})
    finally:
        if not run.done():
            run.cancel()


@router.post(
    "/api/v1/plugins/editor/run",
    summary="Run an unpublished server script once (the plugin editor): logs, result, status",
    responses=error_responses(400, 401, 403, 413, 503),
    openapi_extra=json_body(EditorRunIn),
)
async def run_in_editor(request: Request, principal: Writer, services: Plugins) -> Response:
    body = await parse(request, EditorRunIn, limit=EDITOR_BODY_LIMIT)
    now = time.time()
    plugin = StorePlugin(
        plugin_id=EDITOR_PLUGIN,
        name=EDITOR_PLUGIN,
        author_id=principal.user.user_id,
        display_name="Plugin editor",
        description="",
        version="0.0.0",
        icon="",
        widget_type=None,
        repository=None,
        script="",
        server_script=body.server_script,
        created_at=now,
        updated_at=now,
    )
    call = invocation(body, now)
    user_id = principal.user.user_id
    if NDJSON in request.headers.get("accept", ""):
        return StreamingResponse(
            stream_run(services.executor, plugin, user_id, call),
            media_type=NDJSON,
            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )
    try:
        result = await services.executor.run(plugin, user_id, call)
    except PluginHostUnavailable:
        raise ApiError(503, UNAVAILABLE, headers={"Retry-After": "5"}) from None
    return JSONResponse(answer_of(result), headers={"Cache-Control": "no-store"})
