"""RPC into an installed plugin: ``POST /api/v1/plugins/{name}/rpc/{handler}``.

Calls ``endpoints[handler](ctx, body)`` of the plugin's server script for the caller (a login
token or an API key that may write; a read-only key is a 403), in the sandbox, with ``ctx``
bound to the caller's own data. The handler name keeps only letters, digits, ``-`` and ``_``.
The body is JSON (none: ``{}``; at most 1 MiB); the handler's JSON result is the 200 answer.

Errors, in the API's envelope: 404 unknown plugin or handler (``unknown_handler``); 403
``not_installed``, ``plugin_banned`` or ``plugin_suspended`` (with its reason); 400 the
plugin's own failure, ``code`` its kind (``plugin_error``, ``out_of_memory`` ...) and the
plugin's message; 504 ``timeout``; 503 when our database or key-value store could not be
reached (not the plugin's fault; retry).
"""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency aliases.

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from accounts.directory import AccountDirectory
from accounts.plugins import StorePlugin
from api.deps import Directory, Plugins, Writer
from http_edge.body import parse_json, read_body
from http_edge.errors import ApiError, error_responses
from plugin_host.executor import PluginHostUnavailable
from plugins_runtime import RpcCall, SandboxFailure, http_status, sanitize_handler_name
from schemas.events import PLUGIN_NAME_PATTERN

RPC_BODY_LIMIT = 1024 * 1024

router = APIRouter(tags=["plugins"])
PluginNamePath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=PLUGIN_NAME_PATTERN, description="kebab-case")
]
HandlerPath = Annotated[
    str, Path(min_length=1, max_length=200, description="a key of the script's `endpoints`")
]


async def _runnable(directory: AccountDirectory, user_id: str, name: str) -> StorePlugin:
    """The plugin if the caller may call it now; else why not (after a sync: the answer is
    never older than the request)."""
    catalog = directory.plugins
    if catalog.runnable(user_id, name) is None:
        await directory.sync()
        catalog = directory.plugins
    plugin = catalog.plugin(name)
    if plugin is None:
        raise ApiError(404, f"no plugin named {name!r} in the store")
    if plugin.banned:
        reason = f": {plugin.ban_reason}" if plugin.ban_reason else ""
        raise ApiError(403, f"plugin {name!r} is banned{reason}", code="plugin_banned")
    install = catalog.install(user_id, name)
    if install is None:
        raise ApiError(
            403,
            f"you have not installed plugin {name!r} (POST /api/v1/store/install/{name})",
            code="not_installed",
        )
    if install.suspended:
        raise ApiError(
            403,
            f"plugin {name!r} is suspended for your account: {install.suspended_reason}; "
            "installing it again resumes it",
            code="plugin_suspended",
            details={"reason": install.suspended_reason},
        )
    return plugin


@router.post(
    "/api/v1/plugins/{name}/rpc/{handler}",
    summary="Call an RPC handler of a plugin you installed; its JSON result is the answer",
    responses=error_responses(400, 401, 403, 404, 413, 503, 504),
)
async def rpc(
    request: Request,
    name: PluginNamePath,
    handler: HandlerPath,
    principal: Writer,
    directory: Directory,
    services: Plugins,
) -> JSONResponse:
    handler_name = sanitize_handler_name(handler)
    raw = await read_body(request, RPC_BODY_LIMIT)
    body = parse_json(raw) if raw.strip() else {}
    plugin = await _runnable(directory, principal.user.user_id, name)
    if not handler_name:
        raise ApiError(
            404, f"plugin {name!r} defines no RPC handler {handler!r}", code="unknown_handler"
        )
    try:
        result = await services.executor.run(
            plugin, principal.user.user_id, RpcCall(handler=handler_name, body=body)
        )
    except PluginHostUnavailable:
        raise ApiError(
            503,
            "the plugin's database or key-value store is unavailable; retry",
            headers={"Retry-After": "5"},
        ) from None
    if isinstance(result, SandboxFailure):
        raise ApiError(
            http_status(result.kind),
            f"plugin {name!r} handler {handler_name!r} failed: {result.message}",
            code=result.kind.value,
            details={"plugin": name, "handler": handler_name, "kind": result.kind.value},
        )
    answer: Any = result.result
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})
