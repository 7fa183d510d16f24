"""The rate limiter contract: the in-process and the Redis adapters pass these same tests.

The Redis variants run against a real ``redis-server`` (``tests/support/redis_server.py``), one
per module with a key prefix per limiter; the outage tests at the end start their own (they exist
only for Redis: the in-process store cannot become unavailable). The in-process adapter runs on
a clock the test moves forward (``Clock.wait`` advances it); the Redis adapter counts on the
server's clock, so there ``Clock.wait`` really sleeps, and windows that are waited for are one
second long.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from limits import parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from http_edge.errors import ApiError, install_error_handlers
from http_edge.ratelimit import (
    Decision,
    InProcessRateLimiter,
    LimitClass,
    RedisRateLimiter,
)
from http_edge.ratelimit_http import ApiKeyBudget, RateLimitMiddleware
from http_edge.ratelimit_memory import InProcessCounters
from tests.support.redis_server import RedisServer, running_redis

KINDS = [pytest.param("inprocess"), pytest.param("redis", marks=pytest.mark.redis)]
GENERAL, AUTH, API_KEY = LimitClass.GENERAL, LimitClass.AUTH, LimitClass.API_KEY

Limiter = InProcessRateLimiter | RedisRateLimiter
OpenLimiter = Callable[[Mapping[LimitClass, str]], Limiter]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    yield from running_redis()


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    """One server for the module's tests that keep to a key prefix of their own; the outage
    tests, which stop the server, take a ``redis_server`` of their own."""
    yield from running_redis()


def _redis_limiter(server: RedisServer, limits: Mapping[LimitClass, str]) -> RedisRateLimiter:
    # Short back-off so the outage tests see recovery within a second of Redis returning.
    return RedisRateLimiter(
        server.url,
        limits,
        prefix=f"ct-test-{uuid.uuid4().hex[:8]}",
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
    )


class Clock:
    """The time a limiter counts with: ``now()`` in epoch seconds, ``wait(s)`` to let s pass."""

    def now(self) -> float:
        return time.time()

    async def wait(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock(Clock):
    """Starts at the wall clock's time (so a window's phase is as arbitrary as in production)
    and moves only when told: waiting costs nothing."""

    def __init__(self) -> None:
        self._now = time.time()

    def now(self) -> float:
        return self._now

    async def wait(self, seconds: float) -> None:
        self._now += seconds


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock(kind: str) -> Clock:
    return ManualClock() if kind == "inprocess" else Clock()


@pytest.fixture
async def open_limiter(
    kind: str, clock: Clock, request: pytest.FixtureRequest
) -> AsyncIterator[OpenLimiter]:
    """``open_limiter({class: "3/minute"})``: an adapter of this test's kind, closed after."""
    server: RedisServer | None = None
    if kind == "redis":
        server = request.getfixturevalue("shared_redis")
    opened: list[Limiter] = []

    def open_(limits: Mapping[LimitClass, str]) -> Limiter:
        limiter = (
            InProcessRateLimiter(limits, clock=clock.now)
            if server is None
            else _redis_limiter(server, limits)
        )
        opened.append(limiter)
        return limiter

    yield open_
    for limiter in opened:
        await limiter.close()


async def hits(limiter: Limiter, count: int, cls: LimitClass, key: str) -> list[Decision]:
    return [await limiter.hit(cls, key) for _ in range(count)]


# ---- counting ------------------------------------------------------------------------------


async def test_limiter_allows_up_to_the_limit_then_refuses(open_limiter: OpenLimiter) -> None:
    limiter = open_limiter({GENERAL: "3/minute"})
    allowed = await hits(limiter, 3, GENERAL, "198.51.100.1")
    assert [d.allowed for d in allowed] == [True, True, True]
    assert [d.remaining for d in allowed] == [2, 1, 0]
    assert {d.limit for d in allowed} == {3}
    assert all(d.enforced and d.retry_after_s == 0 for d in allowed)

    refused = await limiter.hit(GENERAL, "198.51.100.1")
    assert not refused.allowed
    assert refused.enforced
    assert refused.remaining == 0
    assert refused.limit == 3
    assert refused.window == "3 per 1 minute"
    assert 1 <= refused.retry_after_s <= 60
    assert refused.reset_at > time.time()


async def test_refusals_are_answered_with_retry_after_and_rate_limit_headers(
    open_limiter: OpenLimiter,
) -> None:
    limiter = open_limiter({AUTH: "1/minute"})
    first = await limiter.hit(AUTH, "k")
    assert set(first.headers()) == {
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    }
    assert first.headers()["X-RateLimit-Remaining"] == "0"
    refused = await limiter.hit(AUTH, "k")
    headers = refused.headers()
    assert headers["Retry-After"] == str(refused.retry_after_s)
    assert int(headers["Retry-After"]) >= 1
    assert headers["X-RateLimit-Limit"] == "1"
    assert headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(headers["X-RateLimit-Reset"]) <= 60


async def test_window_frees_room_by_the_announced_time(
    open_limiter: OpenLimiter, clock: Clock
) -> None:
    limiter = open_limiter({GENERAL: "2/second"})
    await hits(limiter, 2, GENERAL, "k")
    refused = await limiter.hit(GENERAL, "k")
    assert not refused.allowed
    assert refused.retry_after_s == 1
    await clock.wait(max(0.0, refused.reset_at - clock.now()) + 0.05)
    assert (await limiter.hit(GENERAL, "k")).allowed


async def test_window_resets_completely_after_two_windows(
    open_limiter: OpenLimiter, clock: Clock
) -> None:
    limiter = open_limiter({GENERAL: "2/second"})
    await hits(limiter, 3, GENERAL, "k")
    await clock.wait(2.05)  # the sliding counter still weighs the previous window for one
    again = await hits(limiter, 3, GENERAL, "k")
    assert [d.allowed for d in again] == [True, True, False]


async def test_refused_requests_are_not_counted(open_limiter: OpenLimiter, clock: Clock) -> None:
    limiter = open_limiter({GENERAL: "2/second"})
    await hits(limiter, 2, GENERAL, "k")
    refused = await hits(limiter, 20, GENERAL, "k")  # a client hammering while refused
    assert not any(d.allowed for d in refused)
    await clock.wait(max(0.0, refused[-1].reset_at - clock.now()) + 0.05)
    assert (await limiter.hit(GENERAL, "k")).allowed


async def test_a_request_refused_by_one_limit_is_counted_by_none(
    open_limiter: OpenLimiter, clock: Clock
) -> None:
    limiter = open_limiter({GENERAL: "2/second;5/minute"})
    await hits(limiter, 2, GENERAL, "k")
    refused = await hits(limiter, 20, GENERAL, "k")  # refused by the second: the minute stays 2/5
    assert not any(d.allowed for d in refused)
    assert {d.window for d in refused} == {"2 per 1 second"}
    await clock.wait(max(0.0, refused[-1].reset_at - clock.now()) + 0.05)
    assert (await limiter.hit(GENERAL, "k")).allowed


async def test_keys_are_independent(open_limiter: OpenLimiter) -> None:
    limiter = open_limiter({GENERAL: "2/minute"})
    await hits(limiter, 3, GENERAL, "198.51.100.1")
    other = await limiter.hit(GENERAL, "198.51.100.2")
    assert other.allowed
    assert other.remaining == 1
    assert not (await limiter.hit(GENERAL, "198.51.100.1")).allowed


async def test_classes_are_independent(open_limiter: OpenLimiter) -> None:
    limiter = open_limiter({GENERAL: "5/minute", AUTH: "1/minute", API_KEY: "2/hour"})
    await hits(limiter, 2, AUTH, "k")
    assert not (await limiter.hit(AUTH, "k")).allowed
    general = await limiter.hit(GENERAL, "k")
    assert general.allowed
    assert general.remaining == 4
    key = await limiter.hit(API_KEY, "k")
    assert key.allowed
    assert key.limit == 2


async def test_every_limit_of_a_class_must_have_room(open_limiter: OpenLimiter) -> None:
    limiter = open_limiter({GENERAL: "10/second;3/minute"})
    first = await limiter.hit(GENERAL, "k")
    # The limit closest to refusing is the one described.
    assert (first.limit, first.remaining, first.window) == (3, 2, "3 per 1 minute")
    await hits(limiter, 2, GENERAL, "k")
    refused = await limiter.hit(GENERAL, "k")
    assert not refused.allowed
    assert (refused.limit, refused.window) == (3, "3 per 1 minute")
    assert refused.retry_after_s > 1  # the minute window, not the second


async def test_peek_counts_nothing(open_limiter: OpenLimiter) -> None:
    limiter = open_limiter({GENERAL: "2/minute"})
    for _ in range(5):
        peeked = await limiter.peek(GENERAL, "k")
        assert peeked.allowed
        assert peeked.remaining == 2
    await hits(limiter, 2, GENERAL, "k")
    full = await limiter.peek(GENERAL, "k")
    assert not full.allowed
    assert full.retry_after_s >= 1


async def test_a_class_without_limits_is_not_counted(open_limiter: OpenLimiter) -> None:
    limiter = open_limiter({GENERAL: "1/minute", AUTH: ""})
    for _ in range(3):
        decision = await limiter.hit(AUTH, "k")
        assert decision.allowed
        assert not decision.enforced
        assert decision.headers() == {}
    assert (await limiter.hit(LimitClass.BADGES, "k")).allowed  # not configured at all


async def test_concurrent_hits_never_exceed_the_limit(open_limiter: OpenLimiter) -> None:
    limiter = open_limiter({GENERAL: "10/minute"})
    decisions = await asyncio.gather(*(limiter.hit(GENERAL, "k") for _ in range(30)))
    assert sum(d.allowed for d in decisions) == 10


# ---- through the HTTP middleware -----------------------------------------------------------


def _app(limiter: Limiter) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RateLimitMiddleware, limiter=limiter)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/auth/anonymous/login")
    async def login() -> dict[str, str]:
        raise ApiError(401, "unknown account number")

    @app.get("/api/v1/thing")
    async def thing() -> dict[str, str]:
        return {"ok": "yes"}

    budget = ApiKeyBudget(limiter)

    async def authenticate(request: Request) -> Any:
        # Stands in for the Authenticator: one valid key, "good", with the id "key-1".
        if request.headers.get("x-api-key") != "good":
            raise ApiError(401, "invalid API key")
        return await budget.charge(request, SimpleNamespace(via="api_key", key_id="key-1"))

    @app.post("/api/v1/heartbeat", dependencies=[Depends(authenticate)])
    async def heartbeat() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def test_middleware_answers_429_in_the_envelope_per_address(
    open_limiter: OpenLimiter,
) -> None:
    limiter = open_limiter({GENERAL: "5/minute", AUTH: "2/minute"})
    app = _app(limiter)
    one = httpx.ASGITransport(app=app, client=("203.0.113.1", 1234))
    two = httpx.ASGITransport(app=app, client=("203.0.113.2", 1234))
    async with (
        httpx.AsyncClient(transport=one, base_url="http://t") as first,
        httpx.AsyncClient(transport=two, base_url="http://t") as second,
    ):
        assert [(await first.post("/auth/anonymous/login")).status_code for _ in range(2)] == [
            401,
            401,
        ]
        refused = await first.post("/auth/anonymous/login")
        assert refused.status_code == 429
        body = refused.json()
        assert body["error"]["code"] == "too_many_requests"
        assert body["error"]["details"]["class"] == "auth"
        assert body["error"]["details"]["retry_after"] == int(refused.headers["Retry-After"])
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        # Another address, another class, and the health check are not affected.
        assert (await second.post("/auth/anonymous/login")).status_code == 401
        ok = await first.get("/api/v1/thing")
        assert ok.status_code == 200
        assert ok.headers["X-RateLimit-Limit"] == "5"
        assert ok.headers["X-RateLimit-Remaining"] == "4"
        for _ in range(10):
            health = await first.get("/healthz")
            assert health.status_code == 200
            assert "X-RateLimit-Limit" not in health.headers


async def test_middleware_counts_api_keys_per_key_and_bad_keys_per_address(
    open_limiter: OpenLimiter,
) -> None:
    limiter = open_limiter({GENERAL: "3/minute", API_KEY: "2/hour"})
    app = _app(limiter)
    editor = httpx.ASGITransport(app=app, client=("203.0.113.1", 1))
    guesser = httpx.ASGITransport(app=app, client=("203.0.113.2", 1))
    async with (
        httpx.AsyncClient(transport=editor, base_url="http://t") as first,
        httpx.AsyncClient(transport=guesser, base_url="http://t") as second,
    ):
        good = {"X-API-Key": "good"}
        sent = [await first.post("/api/v1/heartbeat", headers=good) for _ in range(3)]
        assert [r.status_code for r in sent] == [200, 200, 429]
        assert [r.headers["X-RateLimit-Limit"] for r in sent] == ["2", "2", "2"]
        assert [r.headers["X-RateLimit-Remaining"] for r in sent] == ["1", "0", "0"]
        over = sent[2].json()["error"]
        assert over["code"] == "too_many_requests"
        assert over["details"]["class"] == "api_key"
        assert int(sent[2].headers["Retry-After"]) >= 1
        # The key's requests did not use the address's budget.
        assert (await first.get("/api/v1/thing")).headers["X-RateLimit-Remaining"] == "2"

        # Keys that do not authenticate are counted against the address, then refused there.
        bad = {"X-API-Key": "guess"}
        guesses = [await second.post("/api/v1/heartbeat", headers=bad) for _ in range(4)]
        assert [r.status_code for r in guesses] == [401, 401, 401, 429]
        assert guesses[2].headers["X-RateLimit-Remaining"] == "0"
        assert guesses[3].json()["error"]["details"]["class"] == "general"
        refused = await second.post("/api/v1/heartbeat", headers={"X-API-Key": "good"})
        assert refused.status_code == 429


# ---- Redis unavailable: fail open, recover -------------------------------------------------


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in r.getMessage() for r in caplog.records if r.name == "http_edge.ratelimit")


async def _eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.mark.redis
async def test_redis_down_fails_open_then_counts_again(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="http_edge.ratelimit")
    limiter = _redis_limiter(redis_server, {GENERAL: "2/minute"})
    try:
        await hits(limiter, 2, GENERAL, "k")
        assert not (await limiter.hit(GENERAL, "k")).allowed

        redis_server.stop()
        down = await hits(limiter, 5, GENERAL, "k")
        await asyncio.sleep(0.3)  # past the back-off: the next hits try Redis again, and fail
        down += await hits(limiter, 5, GENERAL, "k")
        assert all(d.allowed and not d.enforced for d in down)
        assert all(d.headers() == {} for d in down)
        assert (await limiter.peek(GENERAL, "k")).allowed
        assert limiter.degraded
        assert limiter.store_failures >= 2
        assert _warnings(caplog, "rate limiting suspended") == 1  # once per outage

        redis_server.start()  # empty: Redis keeps nothing on disk here

        async def counting() -> bool:
            return (await limiter.hit(GENERAL, "k")).enforced

        await _eventually(counting)
        assert not limiter.degraded
        assert _warnings(caplog, "rate limiting resumed") == 1
        await limiter.hit(GENERAL, "k")
        assert not (await limiter.hit(GENERAL, "k")).allowed
    finally:
        await limiter.close()


@pytest.mark.redis
async def test_a_hanging_redis_costs_one_timeout_then_nothing(redis_server: RedisServer) -> None:
    # A socket that accepts connections (the kernel's backlog) but never answers: like a
    # stopped or overloaded Redis host. Commands time out; requests must not wait on each.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
    limiter = RedisRateLimiter(url, {GENERAL: "2/minute"}, op_timeout_s=0.2, backoff_max_s=5.0)
    try:
        started = time.monotonic()
        first = await limiter.hit(GENERAL, "k")
        assert first.allowed
        assert not first.enforced
        assert time.monotonic() - started < 1.5
        started = time.monotonic()
        later = await hits(limiter, 50, GENERAL, "k")
        assert all(d.allowed for d in later)
        assert time.monotonic() - started < 0.1  # within the back-off nothing waits for Redis
    finally:
        await limiter.close()
        silent.close()


@pytest.mark.redis
async def test_processes_sharing_redis_share_the_counts(redis_server: RedisServer) -> None:
    prefix = f"ct-test-{uuid.uuid4().hex[:8]}"
    one = RedisRateLimiter(redis_server.url, {API_KEY: "3/hour"}, prefix=prefix)
    two = RedisRateLimiter(redis_server.url, {API_KEY: "3/hour"}, prefix=prefix)
    try:
        await hits(one, 2, API_KEY, "key-1")
        shared = await two.hit(API_KEY, "key-1")
        assert shared.allowed
        assert shared.remaining == 0
        assert not (await one.hit(API_KEY, "key-1")).allowed
    finally:
        await one.close()
        await two.close()


# ---- in process: memory stays bounded ------------------------------------------------------


async def test_in_process_counters_forget_expired_keys() -> None:
    now = [1_000_000.0]
    counters = InProcessCounters(sweep_every_s=1.0, clock=lambda: now[0])
    limiter = SlidingWindowCounterRateLimiter(counters)
    item = parse("5/second")
    for address in range(1000):
        assert await limiter.hit(item, "general", f"203.0.113.{address}")
    assert len(counters) == 1000
    now[0] += 2.5  # each counter lives two windows
    assert await limiter.hit(item, "general", "198.51.100.1")  # a hit sweeps, at most once a second
    assert len(counters) == 1


def test_a_refusal_never_announces_a_reset_sooner_than_its_retry_after() -> None:
    """The decision is made on the store's clock a moment before the headers are written: a
    window that frees up in that moment still answers a reset of at least Retry-After."""
    refused = Decision(
        allowed=False,
        limit=1,
        remaining=0,
        reset_at=100.0,
        retry_after_s=1,
        window="1 per 1 minute",
    )
    headers = refused.headers(now=100.4)
    assert headers["Retry-After"] == "1"
    assert headers["X-RateLimit-Reset"] == "1"
    assert (
        Decision(allowed=True, limit=2, remaining=1, reset_at=100.0).headers(now=100.4)[
            "X-RateLimit-Reset"
        ]
        == "0"
    )
