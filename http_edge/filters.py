"""A known filter is applied or refused, never silently ignored.

A client that asks ``/users/current/stats/last_7_days?language=Go`` and gets every language's
total back has been told something false. Every route therefore answers **400
``unsupported_filter``** (naming the filter) when the query string carries a filter from
:data:`KNOWN_FILTERS` that the route does not declare as a query parameter; a route that
declares one applies it. Query parameters that are not filters (``api_key``, a cache buster)
are ignored, as HTTP APIs usually do.

:data:`KNOWN_FILTERS` gathers the filters documented for the APIs CodeTrackr serves: WakaTime's
(summaries: ``project``, ``branches``, ``timezone``, ``timeout``, ``writes_only``, ``start``,
``end``, ``range``; durations: ``date``, ``slice_by``; leaders: ``language``, ``country_code``,
``is_hireable``), the per-dimension filters WakaTime-compatible servers accept on summaries
(``language``, ``editor``, ``operating_system``, ``machine``, ``label``...), and CodeTrackr's own
(``range``, ``start``, ``end``, ``country``, ``available_for_hire``, ``week``).

The check reads the matched route's declared query parameters, so a route (or a filter added to
one) needs no list of its own; it runs as an application-wide dependency
(:func:`reject_unsupported_filters`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from fastapi.dependencies.models import Dependant
from starlette.requests import HTTPConnection

from http_edge.errors import ApiError

__all__ = ["KNOWN_FILTERS", "reject_unsupported_filters", "unsupported_filters"]

KNOWN_FILTERS: frozenset[str] = frozenset(
    {
        # time and counting rules
        "range",
        "start",
        "end",
        "date",
        "week",
        "timezone",
        "timeout",
        "writes_only",
        "slice_by",
        # dimensions
        "project",
        "branches",
        "branch",
        "language",
        "editor",
        "operating_system",
        "os",
        "machine",
        "category",
        "entity",
        "label",
        # who (leaderboards)
        "country",
        "country_code",
        "available_for_hire",
        "is_hireable",
    }
)


def unsupported_filters(asked: Iterable[str], declared: Collection[str]) -> list[str]:
    """Pure: the known filters among ``asked`` that a route declaring ``declared`` ignores."""
    return sorted({name for name in asked if name in KNOWN_FILTERS and name not in declared})


def _declared_query(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared_query(sub)
    return names


def _declared_of(request: HTTPConnection) -> set[str]:
    dependant = getattr(request.scope.get("route"), "dependant", None)
    return _declared_query(dependant) if isinstance(dependant, Dependant) else set()


async def reject_unsupported_filters(request: HTTPConnection) -> None:
    """Application dependency: 400 ``unsupported_filter`` for a known filter the route ignores.

    Typed as a connection, not a request: application dependencies also run for WebSocket
    routes."""
    if KNOWN_FILTERS.isdisjoint(request.query_params.keys()):
        return  # the usual request: no need to read the route's parameters
    declared = _declared_of(request)
    ignored = unsupported_filters(request.query_params.keys(), declared)
    if ignored:
        supported = sorted(KNOWN_FILTERS & declared)
        raise ApiError(
            400,
            f"this endpoint does not support the filter {ignored[0]!r}"
            + (f"; it supports: {', '.join(supported)}" if supported else "; it takes no filter"),
            code="unsupported_filter",
            details={"filter": ignored[0], "unsupported": ignored, "supported": supported},
        )
