"""What the read API's endpoints need, as FastAPI dependencies.

The composition root (:mod:`codetrackr.bootstrap`) builds one :class:`ApiParts` per app and
stores it with :func:`install` on ``app.state``; endpoints declare what they use with the
``Annotated`` aliases below (``principal: Reader``, ``directory: Directory``), so a route module
is a set of plain module-level functions with no builder to close over. Reading the parts from
the request's app, not from a module global, keeps several apps in one process (the tests)
apart.
"""

# No `from __future__ import annotations` here: FastAPI resolves these aliases in the routes.

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import State

from accounts.directory import AccountDirectory
from accounts.oauth import OAuthClient, OAuthProvider, StateSigner
from accounts.sessions import SessionService
from api.routes.account_forms import AccountWrites
from eventlog.port import EventLog
from http_edge.auth import AuthGuards, Principal
from http_edge.errors import ApiError
from plugin_host.executor import PluginServices
from projections.ai_usage import PricingTable

__all__ = [
    "ApiParts",
    "Directory",
    "Log",
    "LoggedIn",
    "OAuthSetup",
    "Plugins",
    "Reader",
    "Sessions",
    "Writer",
    "Writes",
    "api_parts",
    "install",
]


@dataclass(frozen=True, slots=True)
class OAuthSetup:
    """The configured login providers and what the OAuth routes need to run the flow."""

    providers: Mapping[str, OAuthProvider]
    signer: StateSigner
    client_factory: Callable[[], OAuthClient] = OAuthClient
    public_url: str | None = None
    return_url: str | None = None


@dataclass(frozen=True, slots=True)
class ApiParts:
    """The adapters behind the read API. ``store`` is the projection store; each route module
    names the reads it makes with its own protocol (``WakaTimeStore``, ``ProfileStore``)."""

    guards: AuthGuards
    is_authenticated: Callable[[Request], bool]
    directory: AccountDirectory
    sessions: SessionService
    log: EventLog
    store: object
    oauth: OAuthSetup
    plugins: PluginServices | None = None  # None: this process runs no plugins
    ai_pricing: PricingTable | None = None  # None: the table shipped with the project


def install(app_state: State, parts: ApiParts) -> None:
    """Give an app its parts (call with ``app.state``)."""
    app_state.api_parts = parts


def api_parts(request: Request) -> ApiParts:
    parts = request.app.state.api_parts
    assert isinstance(parts, ApiParts)
    return parts


async def _read(request: Request) -> Principal:
    return await api_parts(request).guards.read(request)


async def _write(request: Request) -> Principal:
    return await api_parts(request).guards.write(request)


async def _login(request: Request) -> Principal:
    return await api_parts(request).guards.login(request)


def _directory(request: Request) -> AccountDirectory:
    return api_parts(request).directory


def _sessions(request: Request) -> SessionService:
    return api_parts(request).sessions


def _log(request: Request) -> EventLog:
    return api_parts(request).log


def _plugins(request: Request) -> PluginServices:
    services = api_parts(request).plugins
    if services is None:
        raise ApiError(404, "plugins are not enabled on this server")
    return services


def _writes(request: Request) -> AccountWrites:
    return AccountWrites(api_parts(request).directory)


Reader = Annotated[Principal, Depends(_read)]
"""Any valid credential."""
Writer = Annotated[Principal, Depends(_write)]
"""Any valid credential but a read-only API key (403 for one)."""
LoggedIn = Annotated[Principal, Depends(_login)]
"""A login token (JWT) only."""
Directory = Annotated[AccountDirectory, Depends(_directory)]
Sessions = Annotated[SessionService, Depends(_sessions)]
Writes = Annotated[AccountWrites, Depends(_writes)]
Log = Annotated[EventLog, Depends(_log)]
Plugins = Annotated[PluginServices, Depends(_plugins)]
"""The plugin executor and the store's policy (404 where this process runs no plugins)."""
