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
    http: httpx.AsyncClient,
    path: str,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    response = await http.get(path, params=dict(params or {}), headers=dict(headers or {}))
    result: dict[str, Any] = ok(response).json()
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


async def create_users(
    api_url: str, count: int, *, timezone: str = "UTC", concurrency: int = 8
) -> list[User]:
    """``count`` new anonymous accounts, each with an API key, ``concurrency`` at a time.

    Through the accounts API as a person would: create the account, create a key with the login
    token, read ``/user/me`` for the user id. Concurrent because every account write waits for
    the log (about 0.25 s each on Tansu).
    """
    slots = asyncio.Semaphore(concurrency)

    async def one(http: httpx.AsyncClient) -> User:
        async with slots:
            created = ok(await http.post("/auth/anonymous/create", json={"timezone": timezone}))
            token = str(created.json()["token"])
            bearer = {"Authorization": f"Bearer {token}"}
            key = ok(await http.post("/api/v1/keys", headers=bearer, json={"name": "bench"}))
            me = ok(await http.get("/api/v1/user/me", headers=bearer)).json()
            user_id = str(me.get("user_id") or me.get("id"))
            return User(
                user_id=user_id,
                token=token,
                api_key=str(key.json()["key"]["key"]),
                refresh_token=str(created.json()["refresh_token"]),
            )

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=api_url, timeout=HTTP_TIMEOUT_S, limits=limits) as http:
        return list(await asyncio.gather(*(one(http) for _ in range(count))))


class Sentinels:
    """Tells when the projection has processed everything a user sent so far.

    One user's events are on one partition and projected in append order, so once a heartbeat
    appended after all others is visible, all of them are. Each sentinel is a CodeTrackr
    heartbeat of 30 s on a day the user has no other data (``days_ago``), 2000 s after the
    previous one, so the k-th sentinel makes that day's total exactly 30 * k. Sentinels are
    sent to ingest (``ingest_url``) and looked for in the read API (``api_url``), at most
    ``concurrency`` users at a time, over one connection pool per service.
    """

    def __init__(
        self, ingest_url: str, api_url: str, *, days_ago: int = 20, concurrency: int = 16
    ) -> None:
        self._ingest_url = ingest_url
        self._api_url = api_url
        self._days_ago = days_ago
        self._concurrency = concurrency
        self._sent: dict[str, int] = {}

    def _pool(self, base_url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=base_url,
            timeout=HTTP_TIMEOUT_S,
            limits=httpx.Limits(
                max_connections=self._concurrency, max_keepalive_connections=self._concurrency
            ),
        )

    async def _send(self, http: httpx.AsyncClient, slots: asyncio.Semaphore, user: User) -> int:
        """Sends the user's next sentinel; returns the total its day must then show."""
        k = self._sent.get(user.user_id, 0)
        when = utc_day_start(self._days_ago) + 600 + k * 2000
        async with slots:
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
        return 30 * (k + 1)

    async def _wait(
        self,
        http: httpx.AsyncClient,
        slots: asyncio.Semaphore,
        user: User,
        expected: int,
        deadline: float,
    ) -> None:
        day = utc_date(self._days_ago)
        async with slots:
            await wait_for_total(
                http,
                {"start": day, "end": day},
                expected,
                deadline=deadline,
                what="sentinel day",
                interval_s=0.05,
                headers=user.bearer,
            )

    async def drain(self, users: Sequence[User], timeout_s: float) -> float:
        """Send a sentinel for every user and wait until all are projected; returns the
        ``time.perf_counter()`` at which the last one was seen."""
        deadline = time.monotonic() + timeout_s
        slots = asyncio.Semaphore(self._concurrency)
        async with self._pool(self._ingest_url) as ingest, self._pool(self._api_url) as api:
            expected = await asyncio.gather(*(self._send(ingest, slots, user) for user in users))
            await asyncio.gather(
                *(
                    self._wait(api, slots, user, total, deadline)
                    for user, total in zip(users, expected, strict=True)
                )
            )
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
    headers: Mapping[str, str] | None = None,
) -> None:
    """Poll ``/stats/summary`` until its total is exactly ``expected`` seconds.

    A total above ``expected`` means double counting and fails at once; past ``deadline``
    (``time.monotonic()``) the projection is declared behind.
    """
    while True:
        body = await get_json(http, "/api/v1/stats/summary", params, headers)
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
