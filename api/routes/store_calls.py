"""Calling the blocking projection store from async routes, with one answer when it is down."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

from http_edge.errors import ApiError
from projections.ports import ProjectionStoreUnavailable

P = ParamSpec("P")
T = TypeVar("T")


def store_unavailable(what: str = "stats") -> ApiError:
    """The 503 a route answers while the store cannot be reached (nothing changed; retry)."""
    return ApiError(503, f"{what} are temporarily unavailable", headers={"Retry-After": "5"})


async def blocking(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a store call in the thread pool; the store being down becomes a 503 for stats."""
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except ProjectionStoreUnavailable:
        raise store_unavailable() from None
