"""``GET /api/v1/stats/public`` is kept for a short time: repeated anonymous requests within the
TTL run no new scan of the projection; after it, one request sums again. The clock is injected."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from fastapi import FastAPI

from accounts.state import User
from api.routes.badges import build_public_stats_router
from projections.daily import DailyRow
from projections.ports import UserTotals


class CountingStore:
    def __init__(self) -> None:
        self.scans = 0
        self.seconds = 100.0

    def totals_by_user(self, start: date, end: date) -> list[UserTotals]:
        self.scans += 1
        return [UserTotals("u1", self.seconds, 1, {"Rust": self.seconds})]

    def daily_rows(self, user_id: str, start: date, end: date) -> list[DailyRow]:
        raise AssertionError("not read by this route")

    def active_dates(self, user_id: str) -> list[date]:
        raise AssertionError("not read by this route")


class Directory:
    def __init__(self) -> None:
        self.shows_languages = True

    def users(self) -> list[User]:
        return [
            User(
                "u1", "ada", "UTC", 0.0, is_public=True, profile_show_languages=self.shows_languages
            )
        ]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_public_stats_are_kept_for_the_ttl_then_summed_again() -> None:
    store, directory, clock = CountingStore(), Directory(), Clock()
    app = FastAPI()
    app.include_router(
        build_public_stats_router(directory, store, ttl_s=60, clock=clock)  # type: ignore[arg-type]
    )
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test")

    async def get() -> dict[str, Any]:
        response = await http.get("/api/v1/stats/public")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    first = await get()
    assert store.scans == 2  # all time and the last 7 days
    assert first["total_seconds"] == 100
    store.seconds = 500.0  # new activity, not yet visible
    for _ in range(20):
        clock.now += 2.9  # 58 s in all: still within the TTL
        assert (await get())["total_seconds"] == 100
    assert store.scans == 2

    # Privacy is read per request, never from the kept answer.
    directory.shows_languages = False
    assert (await get())["last_7_days"]["top_languages"] == []
    assert store.scans == 2

    clock.now += 2.1  # 60 s after the scan: summed again, once
    assert (await get())["total_seconds"] == 500
    assert (await get())["total_seconds"] == 500
    assert store.scans == 4
