"""The live push contract: the in-process and the Redis adapters of the live channel, and the
in-memory and Redis ticket stores, must pass these same tests. The Redis variants run against a
real ``redis-server`` (``tests/support/redis_server.py``): one per module, each test keeping to a
key prefix of its own, while the tests that stop or kill Redis start their own.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from live.inprocess import InProcessLiveChannel
from live.port import PUBLIC_LEADERBOARD, LiveChannel, LivePublisher, user_channel
from live.redis import RedisLiveChannel, redis_client
from live.subscription import Subscription
from live.tickets import (
    InMemoryTicketStore,
    RedisTicketStore,
    TicketStore,
    TicketStoreUnavailable,
)
from schemas.live import HeartbeatAccepted, LeaderboardEntry, LeaderboardUpdated, live_message
from tests.support.redis_server import RedisServer, running_redis

KINDS = [pytest.param("inprocess"), pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    yield from running_redis()


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    """One server for the module's tests that keep to a key prefix of their own; the outage
    tests, which stop the server, take a ``redis_server`` of their own."""
    yield from running_redis()


def _redis_channel(server: RedisServer, prefix: str) -> RedisLiveChannel:
    # Short back-off so outage tests recover within a second of Redis returning.
    return RedisLiveChannel(server.url, prefix=prefix, backoff_max_s=0.3, op_timeout_s=2.0)


@dataclass
class Live:
    kind: str
    channel: LiveChannel
    server: RedisServer | None
    open_another: Callable[[], Awaitable[LiveChannel]]  # a second "process" on the same transport


@pytest.fixture(params=KINDS)
async def live(request: pytest.FixtureRequest) -> AsyncIterator[Live]:
    kind: str = request.param
    opened: list[LiveChannel] = []
    server: RedisServer | None = None
    prefix = f"ct-test-{uuid.uuid4().hex[:8]}:"
    if kind == "redis":
        server = request.getfixturevalue("shared_redis")

    async def open_channel() -> LiveChannel:
        channel: LiveChannel
        if server is None:
            channel = opened[0] if opened else InProcessLiveChannel()
        else:
            channel = _redis_channel(server, prefix)
        if channel not in opened:
            await channel.start()
            opened.append(channel)
        return channel

    first = await open_channel()
    try:
        yield Live(kind, first, server, open_channel)
    finally:
        for channel in reversed(opened):
            await asyncio.wait_for(channel.close(), 10)


async def receive(subscription: Subscription, timeout_s: float = 5.0) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(anext(subscription), timeout_s)
    except TimeoutError:
        pytest.fail(f"nothing arrived on {subscription.channel} within {timeout_s} s")


async def receive_n(subscription: Subscription, n: int, timeout_s: float = 10.0) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    out: list[Any] = []
    while len(out) < n:
        out.append(await receive(subscription, max(0.01, deadline - time.monotonic())))
    return out


async def assert_silent(subscription: Subscription, wait_s: float = 0.3) -> None:
    try:
        message = await asyncio.wait_for(anext(subscription), wait_s)
    except TimeoutError:
        return
    pytest.fail(f"unexpected message on {subscription.channel}: {message}")


def msg(i: int) -> dict[str, Any]:
    return {"type": "plugin.event", "plugin": "test", "hook": "on_tick", "data": {"i": i}}


def seq(message: dict[str, Any]) -> int:
    value: int = message["data"]["i"]
    return value


# ---- the channel ----------------------------------------------------------------------------


async def test_live_subscriber_receives_only_its_own_channel(live: Live) -> None:
    alice = await live.channel.subscribe(user_channel("alice"))
    bob = await live.channel.subscribe(user_channel("bob"))
    public = await live.channel.subscribe(PUBLIC_LEADERBOARD)

    await live.channel.publish(user_channel("alice"), msg(1))

    assert await receive(alice) == msg(1)
    await assert_silent(bob)
    await assert_silent(public)


async def test_live_messages_arrive_in_publish_order(live: Live) -> None:
    subscription = await live.channel.subscribe(user_channel("u"), queue_size=1000)
    for i in range(300):
        await live.channel.publish(user_channel("u"), msg(i))
    assert [seq(m) for m in await receive_n(subscription, 300)] == list(range(300))


async def test_live_fans_out_to_every_subscriber_of_a_channel(live: Live) -> None:
    subscriptions = [await live.channel.subscribe(user_channel("u")) for _ in range(3)]
    for i in range(20):
        await live.channel.publish(user_channel("u"), msg(i))
    for subscription in subscriptions:
        assert [seq(m) for m in await receive_n(subscription, 20)] == list(range(20))
    assert live.channel.stats().subscribers == 3


async def test_live_fans_out_across_processes(live: Live) -> None:
    other = await live.open_another()  # in-process: the same channel; Redis: a second client
    subscription = await other.subscribe(user_channel("u"))
    local = await live.channel.subscribe(user_channel("u"))
    await live.channel.publish(user_channel("u"), msg(7))
    assert await receive(subscription) == msg(7)
    assert await receive(local) == msg(7)


async def test_live_slow_subscriber_loses_oldest_with_a_notice_and_never_slows_others(
    live: Live,
) -> None:
    slow = await live.channel.subscribe(user_channel("u"), queue_size=5)
    fast = await live.channel.subscribe(user_channel("u"), queue_size=1000)
    received: list[int] = []

    async def read_fast() -> None:
        async for message in fast:
            received.append(seq(message))
            if len(received) == 50:
                return

    reader = asyncio.create_task(read_fast())
    for i in range(50):
        await live.channel.publish(user_channel("u"), msg(i))
        await asyncio.sleep(0)  # let the fast reader keep up, as a healthy socket would
    await asyncio.wait_for(reader, 10)
    assert received == list(range(50))  # everything, in order, while `slow` read nothing

    notice = await receive(slow)
    assert notice == {"type": "dropped", "count": 45}
    assert live_message.validate_python(notice).type == "dropped"
    assert [seq(m) for m in await receive_n(slow, 5)] == [45, 46, 47, 48, 49]
    await assert_silent(slow)
    assert live.channel.stats().dropped_slow == 45


async def test_live_publish_never_waits_for_a_subscriber_that_reads_nothing(live: Live) -> None:
    await live.channel.subscribe(user_channel("u"), queue_size=1)
    started = time.monotonic()
    for i in range(2000):
        await live.channel.publish(user_channel("u"), msg(i))
    assert time.monotonic() - started < 2.0


async def test_live_closed_subscription_stops_and_receives_nothing_more(live: Live) -> None:
    kept = await live.channel.subscribe(user_channel("u"))
    closed = await live.channel.subscribe(user_channel("u"))
    waiting = asyncio.create_task(anext(closed))
    await asyncio.sleep(0.05)

    closed.close()
    closed.close()  # idempotent
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 5)
    assert live.channel.stats().subscribers == 1

    await live.channel.publish(user_channel("u"), msg(1))
    assert await receive(kept) == msg(1)
    with pytest.raises(StopAsyncIteration):
        await anext(closed)


async def test_live_last_subscriber_leaving_and_a_new_one_joining(live: Live) -> None:
    async with await live.channel.subscribe(user_channel("u")) as first:
        await live.channel.publish(user_channel("u"), msg(1))
        assert await receive(first) == msg(1)
    assert live.channel.stats().subscribers == 0
    await asyncio.sleep(0.05)  # the Redis adapter UNSUBSCRIBEs in the background
    second = await live.channel.subscribe(user_channel("u"))
    await live.channel.publish(user_channel("u"), msg(2))
    assert await receive(second) == msg(2)


async def test_live_channel_close_ends_every_subscription(live: Live) -> None:
    subscription = await live.channel.subscribe(user_channel("u"))
    waiting = asyncio.create_task(anext(subscription))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(live.channel.close(), 10)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 5)


async def test_live_publish_without_subscribers_is_fine(live: Live) -> None:
    await live.channel.publish(user_channel("nobody"), msg(1))
    await live.channel.publish(PUBLIC_LEADERBOARD, msg(2))
    subscription = await live.channel.subscribe(user_channel("nobody"))
    await live.channel.publish(user_channel("nobody"), msg(3))
    # A message published before `subscribe` returned may still be in flight (Redis): it may
    # arrive or not; what was published after must.
    received = [await receive(subscription)]
    if received[0] != msg(3):
        received.append(await receive(subscription))
    assert received in ([msg(3)], [msg(1), msg(3)])
    await assert_silent(subscription)


async def test_live_publish_from_worker_threads_keeps_each_threads_order(live: Live) -> None:
    subscription = await live.channel.subscribe(user_channel("u"), queue_size=1000)

    def produce(offset: int) -> None:
        for i in range(100):
            live.channel.publish_threadsafe(user_channel("u"), msg(offset + i))

    threads = [threading.Thread(target=produce, args=(k * 1000,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    got = [seq(m) for m in await receive_n(subscription, 200)]
    assert [i for i in got if i < 1000] == list(range(100))
    assert [i for i in got if i >= 1000] == list(range(1000, 1100))


async def test_live_publisher_sends_typed_messages_and_swallows_failures(live: Live) -> None:
    mine = await live.channel.subscribe(user_channel("u1"))
    public = await live.channel.subscribe(PUBLIC_LEADERBOARD)
    publisher = LivePublisher(live.channel)
    accepted = HeartbeatAccepted(count=2, last_heartbeat_at=1700000000.5, project="core")
    board = LeaderboardUpdated(
        board="7d", entries=[LeaderboardEntry(rank=1, username="ada", total_seconds=3600.0)]
    )

    await asyncio.to_thread(publisher.publish_user, "u1", accepted)
    publisher.publish_public(board)
    publisher.publish_user("", accepted)  # a bad user id: logged and counted, not raised

    assert live_message.validate_python(await receive(mine)) == accepted
    assert live_message.validate_python(await receive(public)) == board
    assert publisher.failures == 1
    LivePublisher(None).publish_user("u1", accepted)  # publishes nothing, anywhere
    await assert_silent(mine)


async def test_live_rejects_bad_channel_names_and_non_json_messages(live: Live) -> None:
    for name in ("", "user:", "users:1", "public:other"):
        with pytest.raises(ValueError, match="channel"):
            await live.channel.subscribe(name)
        with pytest.raises(ValueError, match="channel"):
            await live.channel.publish(name, msg(1))
    with pytest.raises(TypeError):
        await live.channel.publish(user_channel("u"), {"at": object()})
    with pytest.raises(ValueError, match="JSON"):
        await live.channel.publish(user_channel("u"), {"x": float("nan")})
    before = live.channel.stats().publish_failures
    live.channel.publish_threadsafe(user_channel("u"), {"at": object()})  # never raises
    assert live.channel.stats().publish_failures == before + 1


# ---- who listens ----------------------------------------------------------------------------


async def listened(channel: LiveChannel, *names: str) -> set[str]:
    """``channel.listened`` as a processor calls it: from a worker thread, not the loop."""
    return await asyncio.to_thread(channel.listened, names)


async def until_listened(
    channel: LiveChannel, name: str, expected: bool, timeout_s: float = 5.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while (name in await listened(channel, name)) != expected:
        if time.monotonic() > deadline:
            pytest.fail(f"{name} still {'not ' if expected else ''}listened after {timeout_s} s")
        await asyncio.sleep(0.02)


async def test_live_listened_is_empty_without_subscribers(live: Live) -> None:
    assert await listened(live.channel, user_channel("nobody"), PUBLIC_LEADERBOARD) == set()
    assert await listened(live.channel) == set()
    other = await live.channel.subscribe(user_channel("other"))
    assert await listened(live.channel, user_channel("nobody")) == set()
    other.close()


async def test_live_listened_names_the_subscribed_channels(live: Live) -> None:
    await live.channel.subscribe(user_channel("u"))
    await live.channel.subscribe(PUBLIC_LEADERBOARD)
    asked = (user_channel("u"), user_channel("v"), PUBLIC_LEADERBOARD)
    assert await listened(live.channel, *asked) == {user_channel("u"), PUBLIC_LEADERBOARD}


async def test_live_listened_sees_subscriptions_of_other_processes(live: Live) -> None:
    other = await live.open_another()  # in-process: the same channel; Redis: a second client
    await other.subscribe(user_channel("u"))
    assert await listened(live.channel, user_channel("u"), user_channel("v")) == {user_channel("u")}


async def test_live_listened_ends_with_the_last_subscription(live: Live) -> None:
    other = await live.open_another()
    first = await live.channel.subscribe(user_channel("u"))
    second = await other.subscribe(user_channel("u"))
    first.close()
    assert await listened(live.channel, user_channel("u")) == {user_channel("u")}
    second.close()
    await until_listened(live.channel, user_channel("u"), False)  # Redis: UNSUBSCRIBE is async
    await live.channel.subscribe(user_channel("u"))
    assert await listened(live.channel, user_channel("u")) == {user_channel("u")}


async def test_live_listened_from_threads_while_subscriptions_come_and_go(live: Live) -> None:
    """Worker threads ask while the loop subscribes and unsubscribes: no error, and a channel
    subscribed throughout is always reported."""
    kept = await live.channel.subscribe(user_channel("kept"))
    stop = threading.Event()
    answers: list[set[str]] = []
    errors: list[BaseException] = []
    names = [user_channel("kept"), *(user_channel(f"c{i}") for i in range(20))]

    def ask() -> None:
        try:
            while not stop.is_set():
                answers.append(live.channel.listened(names))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for round_ in range(20):
            churn = [await live.channel.subscribe(user_channel(f"c{i}")) for i in range(20)]
            await asyncio.sleep(0.005 * (round_ % 3))
            for subscription in churn:
                subscription.close()
    finally:
        stop.set()
        for thread in threads:
            await asyncio.to_thread(thread.join, 10)
    assert not errors, errors
    assert answers
    assert all(user_channel("kept") in answer for answer in answers)
    assert all(answer <= set(names) for answer in answers)
    kept.close()


async def test_live_listened_on_the_loop_thread_never_blocks_and_never_misses(
    live: Live,
) -> None:
    """On its own loop an adapter that must ask its transport cannot wait for the answer; it
    may then over-report (fail open), never under-report."""
    await live.channel.subscribe(user_channel("u"))
    started = time.monotonic()
    answer = live.channel.listened([user_channel("u"), user_channel("v")])
    assert time.monotonic() - started < 0.5
    assert user_channel("u") in answer
    assert answer <= {user_channel("u"), user_channel("v")}


async def test_live_listened_rejects_bad_channel_names(live: Live) -> None:
    for name in ("", "user:", "users:1", "public:other"):
        with pytest.raises(ValueError, match="channel"):
            await listened(live.channel, name)


async def test_live_publisher_listening(live: Live) -> None:
    await live.channel.subscribe(user_channel("u1"))
    publisher = LivePublisher(live.channel)
    asked = [user_channel("u1"), user_channel("u2")]
    assert await asyncio.to_thread(publisher.listening, asked) == {user_channel("u1")}
    assert await asyncio.to_thread(publisher.listening, []) == set()
    # A caller's bad name is logged and counted, and everything asked is treated as listened.
    bad = [user_channel("u1"), "nope"]
    assert await asyncio.to_thread(publisher.listening, bad) == set(bad)
    assert publisher.failures == 1
    assert LivePublisher(None).listening(asked) == set()  # publishes nothing: nobody to hear


# ---- Redis outages --------------------------------------------------------------------------


async def _until_delivered(
    channel: LiveChannel, subscription: Subscription, timeout_s: float = 15.0
) -> list[dict[str, Any]]:
    """Publish probes until one arrives; return everything received up to and including it."""
    deadline = time.monotonic() + timeout_s
    received: list[dict[str, Any]] = []
    i = 0
    while time.monotonic() < deadline:
        i += 1
        await channel.publish(subscription.channel, msg(10_000 + i))
        try:
            while True:
                message = await asyncio.wait_for(anext(subscription), 0.1)
                received.append(message)
                if message.get("type") == "plugin.event":
                    return received
        except TimeoutError:
            continue
    pytest.fail(f"delivery did not resume within {timeout_s} s; got {received}")


@pytest.mark.redis
async def test_live_redis_outage_never_raises_and_delivery_resumes(
    redis_server: RedisServer,
) -> None:
    channel = _redis_channel(redis_server, f"ct-{uuid.uuid4().hex[:8]}:")
    await channel.start()
    try:
        subscription = await channel.subscribe(user_channel("u"))
        await channel.publish(user_channel("u"), msg(1))
        assert await receive(subscription) == msg(1)

        redis_server.kill()
        started = time.monotonic()
        for i in range(500):
            await channel.publish(user_channel("u"), msg(i))
            channel.publish_threadsafe(user_channel("u"), msg(i))
        assert time.monotonic() - started < 1.0, "publishing must not wait for Redis"
        late = await channel.subscribe(user_channel("late"))  # subscribing works while down too

        for _ in range(200):  # the publishing task drops them in the background
            if channel.stats().publish_failures >= 1000:
                break
            await asyncio.sleep(0.05)
        assert channel.stats().publish_failures == 1000
        assert channel.stats().reconnects >= 1

        redis_server.start()
        resumed = await _until_delivered(channel, subscription)
        # Messages published during the outage are gone, and the subscriber is told so.
        assert resumed[0] == {"type": "dropped", "count": None}
        assert all(m["data"]["i"] > 10_000 for m in resumed[1:])
        resumed_late = await _until_delivered(channel, late)
        assert resumed_late[-1]["type"] == "plugin.event"
    finally:
        await asyncio.wait_for(channel.close(), 10)


@pytest.mark.redis
async def test_live_redis_starts_and_closes_while_redis_is_down(
    redis_server: RedisServer,
) -> None:
    redis_server.kill()
    channel = _redis_channel(redis_server, f"ct-{uuid.uuid4().hex[:8]}:")
    await asyncio.wait_for(channel.start(), 2)
    subscription = await asyncio.wait_for(channel.subscribe(user_channel("u")), 2)
    await channel.publish(user_channel("u"), msg(1))
    redis_server.start()
    resumed = await _until_delivered(channel, subscription)
    assert resumed[-1]["type"] == "plugin.event"
    redis_server.kill()
    await asyncio.wait_for(channel.close(), 5)  # does not hang on a dead Redis
    with pytest.raises(StopAsyncIteration):
        await anext(subscription)


@pytest.mark.redis
async def test_live_redis_client_reconnects_pooled_connections_after_a_restart(
    redis_server: RedisServer,
) -> None:
    """No send after a restart fails on a connection pooled before it (redis-py 8 skips that
    check when maintenance notifications are on, so publishing failed and backed off again)."""
    client = redis_client(redis_server.url)
    try:
        await asyncio.gather(*(client.publish("ct-pool", str(i)) for i in range(4)))
        redis_server.kill()
        await asyncio.sleep(0.2)  # the loop sees the pooled connections closed
        redis_server.start()
        for i in range(4):
            await client.publish("ct-pool", str(i))
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_live_redis_listened_fails_open_while_redis_is_down(
    redis_server: RedisServer,
) -> None:
    channel = _redis_channel(redis_server, f"ct-{uuid.uuid4().hex[:8]}:")
    await channel.start()
    names = {user_channel("u"), user_channel("v"), PUBLIC_LEADERBOARD}
    try:
        await channel.subscribe(user_channel("u"))
        assert await listened(channel, *names) == {user_channel("u")}

        redis_server.kill()
        for _ in range(5):  # the first failure, then the back-off: every answer is "all"
            started = time.monotonic()
            assert await listened(channel, *names) == names
            assert time.monotonic() - started < 2.0, "listened must give up within a second"

        redis_server.start()
        deadline = time.monotonic() + 15
        while await listened(channel, *names) != {user_channel("u")}:
            assert time.monotonic() < deadline, "listened did not answer again after Redis"
            await asyncio.sleep(0.1)
    finally:
        await asyncio.wait_for(channel.close(), 10)


@pytest.mark.redis
def test_live_redis_listened_fails_open_without_a_running_loop(redis_server: RedisServer) -> None:
    """Not started, on a loop that is stuck or stopped, closed: every channel is listened,
    answered within about the timeout. (A plain test: this thread is the processor's.)"""
    prefix = f"ct-{uuid.uuid4().hex[:8]}:"
    names = {user_channel("u"), PUBLIC_LEADERBOARD}
    assert _redis_channel(redis_server, prefix).listened(names) == names  # never started

    channel = RedisLiveChannel(redis_server.url, prefix=prefix, listened_timeout_s=0.3)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(channel.start(), loop).result(5)
        assert channel.listened(names) == set()  # it can tell

        loop.call_soon_threadsafe(time.sleep, 1.0)  # a stuck loop: the answer comes too late
        started = time.monotonic()
        assert channel.listened(names) == names
        assert time.monotonic() - started < 0.9

        loop.call_soon_threadsafe(loop.stop)  # a loop that stopped: nobody would answer
        thread.join(5)
        started = time.monotonic()
        assert channel.listened(names) == names
        assert time.monotonic() - started < 0.1
    finally:
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
        loop.run_until_complete(asyncio.wait_for(channel.close(), 10))
        loop.close()
    assert channel.listened(names) == names  # closed


# ---- tickets --------------------------------------------------------------------------------


@dataclass
class Tickets:
    kind: str
    store: TicketStore
    expire: Callable[[], Awaitable[None]]  # let the store's TTL pass
    open_another: Callable[[], TicketStore]  # the same tickets seen from another process


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=KINDS)
async def tickets(request: pytest.FixtureRequest) -> AsyncIterator[Tickets]:
    kind: str = request.param
    stores: list[TicketStore] = []
    if kind == "inprocess":
        clock = FakeClock()
        store: TicketStore = InMemoryTicketStore(30.0, clock=clock)

        async def expire() -> None:
            clock.now += 30.0

        def another() -> TicketStore:
            return store

        stores.append(store)
    else:
        server: RedisServer = request.getfixturevalue("shared_redis")
        prefix = f"ct-test-{uuid.uuid4().hex[:8]}:"
        ttl_s = 0.5  # Redis keeps time itself: a short TTL instead of a fake clock

        def another() -> TicketStore:
            stores.append(RedisTicketStore(server.url, ttl_s, prefix=prefix))
            return stores[-1]

        store = another()

        async def expire() -> None:
            await asyncio.sleep(ttl_s + 0.2)

    try:
        yield Tickets(kind, store, expire, another)
    finally:
        for opened in stores:
            await opened.close()


async def test_ticket_redeems_once_for_its_user(tickets: Tickets) -> None:
    ticket = await tickets.store.mint("user-1")
    assert await tickets.store.redeem(ticket) == "user-1"
    assert await tickets.store.redeem(ticket) is None


async def test_ticket_expires_after_its_ttl(tickets: Tickets) -> None:
    kept, expired = await tickets.store.mint("u"), await tickets.store.mint("u")
    assert await tickets.store.redeem(kept) == "u"
    await tickets.expire()
    assert await tickets.store.redeem(expired) is None


async def test_ticket_in_memory_is_valid_until_thirty_seconds() -> None:
    clock = FakeClock()
    store = InMemoryTicketStore(clock=clock)
    assert store.ttl_s == 30.0
    early, late = await store.mint("u"), await store.mint("u")
    clock.now += 29.9
    assert await store.redeem(early) == "u"
    clock.now += 0.1
    assert await store.redeem(late) is None


async def test_ticket_unknown_or_malformed_is_refused(tickets: Tickets) -> None:
    await tickets.store.mint("u")
    for bad in ("", "nope", "x" * 10_000, "é\x00"):
        assert await tickets.store.redeem(bad) is None


async def test_tickets_are_distinct_and_unguessable(tickets: Tickets) -> None:
    minted = [await tickets.store.mint("u") for _ in range(200)]
    assert len(set(minted)) == 200
    assert all(len(t) >= 43 for t in minted)  # 256 random bits, URL-safe base64


async def test_ticket_concurrent_redeems_let_exactly_one_in(tickets: Tickets) -> None:
    ticket = await tickets.store.mint("u")
    others = [tickets.open_another() for _ in range(3)]
    results = await asyncio.gather(
        *(store.redeem(ticket) for store in [tickets.store, *others] for _ in range(5))
    )
    assert results.count("u") == 1
    assert results.count(None) == len(results) - 1


async def test_ticket_minted_by_one_process_is_redeemed_by_another(tickets: Tickets) -> None:
    other = tickets.open_another()
    ticket = await tickets.store.mint("u")
    assert await other.redeem(ticket) == "u"
    assert await tickets.store.redeem(ticket) is None


async def test_ticket_store_keeps_older_tickets_until_the_cap() -> None:
    clock = FakeClock()
    store = InMemoryTicketStore(clock=clock, max_outstanding=3)
    first, *rest = [await store.mint(f"u{i}") for i in range(4)]
    assert await store.redeem(first) is None  # the oldest made room
    assert [await store.redeem(t) for t in rest] == ["u1", "u2", "u3"]


@pytest.mark.redis
async def test_ticket_redis_keeps_only_a_hash(redis_server: RedisServer) -> None:
    store = RedisTicketStore(redis_server.url, prefix="ct-hash:")
    try:
        ticket = await store.mint("u")
        async with aioredis.Redis.from_url(redis_server.url) as raw:
            keys = [k.decode() for k in await raw.keys("*")]
            ttl_ms = await raw.pttl(keys[0])
        assert len(keys) == 1
        assert ticket not in keys[0]
        assert 29_000 < ttl_ms <= 30_000
    finally:
        await store.close()


@pytest.mark.redis
async def test_ticket_redis_down_is_unavailable_not_unknown(redis_server: RedisServer) -> None:
    store = RedisTicketStore(redis_server.url)
    try:
        ticket = await store.mint("u")
        redis_server.kill()
        with pytest.raises(TicketStoreUnavailable):
            await asyncio.wait_for(store.mint("u"), 5)
        with pytest.raises(TicketStoreUnavailable):
            await asyncio.wait_for(store.redeem(ticket), 5)
        redis_server.start()  # an empty Redis: the old ticket is gone, new ones work
        fresh = await store.mint("u")
        assert await store.redeem(fresh) == "u"
    finally:
        await store.close()
