"""One router, several base paths: the WakaTime API under the prefixes other servers use.

WakaTime clients are configured with a base URL and append WakaTime's paths to it
(``/users/current/heartbeats.bulk``). CodeTrackr serves the WakaTime API under its canonical base
``/api/v1`` and, so that a client configured for another WakaTime-compatible server works
unchanged, under these aliases:

* ``/api/compat/wakatime/v1`` (Wakapi's base),
* ``/api/v1/compat/waka`` (Chronova's base).

Declare the routes once, on an :class:`fastapi.APIRouter`, with paths relative to the base
(``"/users/{user}/heartbeats"``), then call :func:`include_aliased`. Every alias runs the same
endpoint with the same dependencies. Only the canonical paths appear in the OpenAPI schema: the
aliases would triple it (and the schema fuzzer's run) without describing anything new.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

WAKATIME_PREFIX = "/api/v1"
WAKAPI_WAKATIME_PREFIX = "/api/compat/wakatime/v1"
WAKATIME_ALIASES: tuple[str, ...] = (WAKAPI_WAKATIME_PREFIX, "/api/v1/compat/waka")


def include_aliased(
    parent: APIRouter | FastAPI,
    router: APIRouter,
    *,
    prefix: str = WAKATIME_PREFIX,
    aliases: Sequence[str] = WAKATIME_ALIASES,
) -> None:
    """Serve every route of ``router`` under ``prefix`` (in the schema) and each alias (not).

    FastAPI copies the routes when they are included, so declare all of ``router``'s routes
    before calling this. The prefixes must start with ``/`` and not end with one.
    """
    parent.include_router(router, prefix=prefix)
    for alias in aliases:
        parent.include_router(router, prefix=alias, include_in_schema=False)


def aliased_paths(
    path: str, *, prefix: str = WAKATIME_PREFIX, aliases: Sequence[str] = WAKATIME_ALIASES
) -> list[str]:
    """Every full path a route declared as ``path`` is served at, the canonical one first."""
    return [base + path for base in (prefix, *aliases)]
