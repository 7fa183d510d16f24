"""HTTP helpers shared by the figures: one-connection clients, timed calls, and waiting until the
projection has caught up with everything a user sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from bench.deploy import User
from bench.payloads import utc_date, utc_day_start

# Every wait in the bench is bounded; these are the defaults.
HTTP_TIMEOUT_S = 120.0
SENTINEL_PROJECT = "bench-sentinel"


class BenchError(RuntimeError):
    """A figure could not be measured (a non-2xx answer, a wrong total, a timeout)."""


def client(base_url: str, headers: Mapping[str, str] | None = None) -> httpx.AsyncClient:
    """An HTTP/1.1 client holding ONE keep-alive connection, as a single editor or tool does."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers=dict(headers or {}),
        timeout=HTTP_TIMEOUT_S,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


def ok(response: httpx.Response) -> httpx.Response:
    if not 200 <= response.status_code < 300:
        raise BenchError(
            f"{response.request.method} {response.request.url.path} -> "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response


async def get_json(
    http: httpx.AsyncClient, path: str, params: Mapping[str, str] | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = ok(await http.get(path, params=dict(params or {}))).json()
    return result


async def timed_get(
    http: httpx.AsyncClient, path: str, params: Mapping[str, str] | None = None
) -> tuple[float, dict[str, Any]]:
    """Round-trip seconds of one GET (headers and body read) and its JSON body."""
    started = time.perf_counter()
    response = await http.get(path, params=dict(params or {}))
    elapsed = time.perf_counter() - started
    ok(response)
    body: dict[str, Any] = response.json()
    return elapsed, body


class Sentinels:
    """Tells when the projection has processed everything a user sent so far.

    One user's events are on one partition and projected in append order, so once a heartbeat
    appended after all others is visible, all of them are. Each sentinel is a CodeTrackr
    heartbeat of 30 s on a day the user has no other data (``days_ago``), 2000 s after the
    previous one, so the k-th sentinel makes that day's total exactly 30 * k.
    """

    def __init__(self, base_url: str, *, days_ago: int = 20) -> None:
        self._base_url = base_url
        self._days_ago = days_ago
        self._sent: dict[str, int] = {}

    async def _drain_one(self, user: User, deadline: float) -> None:
        k = self._sent.get(user.user_id, 0)
        when = utc_day_start(self._days_ago) + 600 + k * 2000
        day = utc_date(self._days_ago)
        # X-API-Key wins over the bearer token (the server checks it first): ingest by key,
        # read by login token, on one connection.
        async with client(self._base_url, user.bearer) as http:
            ok(
                await http.post(
                    "/api/v1/heartbeat",
                    json={
                        "project": SENTINEL_PROJECT,
                        "file": "sentinel",
                        "duration": 30,
                        "time": when,
                    },
                    headers={"X-API-Key": user.api_key},
                )
            )
            self._sent[user.user_id] = k + 1
            expected = 30 * (k + 1)
            await wait_for_total(
                http,
                {"start": day, "end": day},
                expected,
                deadline=deadline,
                what="sentinel day",
                interval_s=0.05,
            )

    async def drain(self, users: Sequence[User], timeout_s: float) -> float:
        """Send a sentinel for every user and wait until all are projected; returns the
        ``time.perf_counter()`` at which the last one was seen."""
        deadline = time.monotonic() + timeout_s
        await asyncio.gather(*(self._drain_one(user, deadline) for user in users))
        return time.perf_counter()


async def wait_for_total(
    http: httpx.AsyncClient,
    params: Mapping[str, str],
    expected: int,
    *,
    deadline: float,
    what: str,
    interval_s: float,
    on_total: Callable[[int], object] | None = None,
) -> None:
    """Poll ``/stats/summary`` until its total is exactly ``expected`` seconds.

    A total above ``expected`` means double counting and fails at once; past ``deadline``
    (``time.monotonic()``) the projection is declared behind.
    """
    while True:
        body = await get_json(http, "/api/v1/stats/summary", params)
        total = int(body["total_seconds"])
        if on_total is not None:
            on_total(total)
        if total == expected:
            return
        if total > expected:
            raise BenchError(f"{what} total {total} s, expected {expected} s")
        if time.monotonic() > deadline:
            raise BenchError(f"projection did not catch up in time ({what} {total}/{expected} s)")
        await asyncio.sleep(interval_s)
