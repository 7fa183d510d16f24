"""The live WebSocket endpoints over real sockets: uvicorn serves the live router in a thread, the
tests are WebSocket clients (the ``websockets`` library) and publish through the server's own
channel, standing in for the processors. Each test runs on the in-process adapters and on Redis
(a ``redis-server`` of its own).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket as socket_module
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from accounts.state import User
from api.routes.live import _REVOKED as REVOKED
from api.routes.live import Grant, build_live_router
from http_edge.auth import Principal
from http_edge.errors import ApiError, install_error_handlers
from live.inprocess import InProcessLiveChannel
from live.port import PUBLIC_LEADERBOARD, LiveChannel, user_channel
from live.redis import RedisLiveChannel
from live.tickets import InMemoryTicketStore, RedisTicketStore, TicketStore
from tests.support.redis_server import RedisServer, running_redis

KINDS = [pytest.param("inprocess"), pytest.param("redis", marks=pytest.mark.redis)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _free_port() -> int:
    with socket_module.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _authenticate(request: Request) -> Principal:
    """Stands in for the real authenticator: ``X-Test-User: <user id>``, and a login session
    with ``X-Test-Session: <session id>``."""
    user_id = request.headers.get("x-test-user")
    if not user_id:
        raise ApiError(401, "missing X-Test-User")
    user = User(user_id=user_id, username=user_id, timezone="UTC", created_at=0.0)
    session_id = request.headers.get("x-test-session")
    if session_id:
        return Principal(user=user, via="jwt", session_id=session_id)
    return Principal(user=user, via="api_key", key_id=f"key-of-{user_id}")


class LiveServer:
    """The live router on a real loopback socket, served by uvicorn in a thread."""

    def __init__(self, channel: LiveChannel, tickets: TicketStore, **router_options: Any) -> None:
        self.channel = channel
        self.tickets = tickets

        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await channel.start()
            try:
                yield
            finally:
                await channel.close()
                await tickets.close()

        app = FastAPI(lifespan=lifespan)
        install_error_handlers(app)
        app.include_router(build_live_router(_authenticate, channel, tickets, **router_options))
        self.port = _free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="live-uvicorn", daemon=True)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(20)
        assert not self._thread.is_alive(), "the live test server did not stop"

    def ticket(self, user_id: str, session_id: str | None = None) -> str:
        headers = {"X-Test-User": user_id}
        if session_id is not None:
            headers["X-Test-Session"] = session_id
        response = httpx.post(f"{self.http_url}/api/v1/ws-ticket", headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["expires_in"] == 30
        ticket: str = body["ticket"]
        return ticket

    def publish(self, channel: str, message: dict[str, Any]) -> None:
        """What a processor does: publish from a thread that is not the server's loop."""
        self.channel.publish_threadsafe(channel, message)


@dataclass
class Setup:
    kind: str
    open_server: Callable[..., LiveServer]  # another server (process) on the same transport
    clock: FakeClock
    redis: RedisServer | None


@contextlib.contextmanager
def _servers(redis: RedisServer | None) -> Iterator[Setup]:
    prefix = f"ct-test-{uuid.uuid4().hex[:8]}:"
    clock = FakeClock()
    servers: list[LiveServer] = []
    shared_tickets = InMemoryTicketStore(clock=clock)

    def open_server(**router_options: Any) -> LiveServer:
        channel: LiveChannel
        tickets: TicketStore
        if redis is None:
            if servers:
                raise RuntimeError("one in-process server per test")
            channel, tickets = InProcessLiveChannel(), shared_tickets
        else:
            channel = RedisLiveChannel(redis.url, prefix=prefix + "live:", backoff_max_s=0.3)
            tickets = RedisTicketStore(redis.url, prefix=prefix + "ticket:")
        servers.append(LiveServer(channel, tickets, **router_options).start())
        return servers[-1]

    try:
        yield Setup("inprocess" if redis is None else "redis", open_server, clock, redis)
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(params=KINDS)
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    """Servers on the in-process adapters, then on Redis."""
    redis = request.getfixturevalue("redis_server") if request.param == "redis" else None
    with _servers(redis) as opened:
        yield opened


@pytest.fixture
def inprocess_setup() -> Iterator[Setup]:
    with _servers(None) as opened:
        yield opened


@pytest.fixture
def redis_setup(redis_server: RedisServer) -> Iterator[Setup]:
    with _servers(redis_server) as opened:
        yield opened


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    yield from running_redis()


@contextlib.contextmanager
def socket(url: str, **options: Any) -> Iterator[ClientConnection]:
    with connect(url, open_timeout=10, close_timeout=2, **options) as ws:
        yield ws


@contextlib.contextmanager
def stalled_socket(port: int, path: str) -> Iterator[socket_module.socket]:
    """A WebSocket client that completes the handshake and the first frame, then reads nothing
    (with a tiny receive buffer), so the server's sends back up as with a stuck browser tab."""
    sock = socket_module.socket()
    sock.setsockopt(socket_module.SOL_SOCKET, socket_module.SO_RCVBUF, 4096)
    sock.settimeout(10)
    try:
        sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while not head.endswith(b"\r\n\r\n"):  # byte by byte: frames must stay unread
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        _, length = sock.recv(2, socket_module.MSG_WAITALL)
        first = json.loads(sock.recv(length & 0x7F, socket_module.MSG_WAITALL))
        assert first["type"] == "subscribed"  # the server has subscribed this socket
        yield sock
    finally:
        sock.close()


def recv_json(ws: ClientConnection, timeout_s: float = 5.0) -> dict[str, Any]:
    try:
        message: dict[str, Any] = json.loads(ws.recv(timeout=timeout_s))
    except TimeoutError:
        pytest.fail(f"nothing received within {timeout_s} s")
    return message


def assert_silent(ws: ClientConnection, wait_s: float = 0.5) -> None:
    try:
        message = ws.recv(timeout=wait_s)
    except TimeoutError:
        return
    pytest.fail(f"unexpected message: {message}")


def close_of(ws: ClientConnection, timeout_s: float = 5.0) -> tuple[int, str]:
    """The close code and reason the server ended ``ws`` with."""
    with pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=timeout_s)
    received = info.value.rcvd
    assert received is not None, "closed without a close frame"
    return received.code, received.reason


def subscribed(ws: ClientConnection) -> str:
    first = recv_json(ws)
    assert first["type"] == "subscribed"
    name: str = first["channel"]
    return name


def event(i: int) -> dict[str, Any]:
    return {"type": "plugin.event", "plugin": "test", "hook": "on_tick", "data": {"i": i}}


# ---- tests ----------------------------------------------------------------------------------


def test_live_socket_receives_only_its_owners_messages(setup: Setup) -> None:
    server = setup.open_server()
    with (
        socket(f"{server.ws_url}/ws?ticket={server.ticket('alice')}") as alice,
        socket(f"{server.ws_url}/ws?ticket={server.ticket('bob')}") as bob,
    ):
        assert subscribed(alice) == user_channel("alice")
        assert subscribed(bob) == user_channel("bob")

        server.publish(user_channel("alice"), event(1))
        assert recv_json(alice) == event(1)
        assert_silent(bob)

        server.publish(user_channel("bob"), event(2))
        assert recv_json(bob) == event(2)
        assert_silent(alice)


def test_live_ticket_works_once(setup: Setup) -> None:
    server = setup.open_server()
    ticket = server.ticket("alice")
    with socket(f"{server.ws_url}/ws?ticket={ticket}") as first:
        assert subscribed(first) == user_channel("alice")
        with socket(f"{server.ws_url}/ws?ticket={ticket}") as again:
            assert close_of(again) == (1008, "invalid, used or expired ticket")


def test_live_ticket_expires_after_thirty_seconds(inprocess_setup: Setup) -> None:
    # In-memory tickets with a fake clock (Redis keeps its own time: its expiry is tested with a
    # short TTL in the contract suite).
    setup = inprocess_setup
    server = setup.open_server()
    in_time, late = server.ticket("alice"), server.ticket("alice")
    setup.clock.now += 29.9
    with socket(f"{server.ws_url}/ws?ticket={in_time}") as ws:
        assert subscribed(ws) == user_channel("alice")
    setup.clock.now += 0.1
    with socket(f"{server.ws_url}/ws?ticket={late}") as ws:
        assert close_of(ws) == (1008, "invalid, used or expired ticket")


@pytest.mark.parametrize("query", ["", "?ticket=", "?ticket=not-a-ticket", "?other=1"])
def test_live_socket_without_a_valid_ticket_is_closed_with_1008(setup: Setup, query: str) -> None:
    server = setup.open_server()
    with socket(f"{server.ws_url}/ws{query}") as ws:
        code, reason = close_of(ws)
    assert code == 1008
    assert reason


def test_live_ticket_needs_credentials(setup: Setup) -> None:
    server = setup.open_server()
    response = httpx.post(f"{server.http_url}/api/v1/ws-ticket", timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_live_public_socket_gets_public_messages_only(setup: Setup) -> None:
    server = setup.open_server()
    board = {"type": "leaderboard.updated", "board": "7d", "entries": []}
    with (
        socket(f"{server.ws_url}/ws/public") as public,
        socket(f"{server.ws_url}/ws?ticket={server.ticket('alice')}") as alice,
    ):
        assert subscribed(public) == PUBLIC_LEADERBOARD
        subscribed(alice)
        server.publish(user_channel("alice"), event(1))
        server.publish(PUBLIC_LEADERBOARD, board)
        assert recv_json(public) == board
        assert recv_json(alice) == event(1)
        assert_silent(alice)
        assert_silent(public)


def test_live_slow_socket_never_stalls_a_fast_one(setup: Setup) -> None:
    server = setup.open_server(queue_size=8, send_timeout_s=1.0)
    padding = "x" * 20_000  # 1,000 of these overflow any socket buffer
    with (
        stalled_socket(server.port, f"/ws?ticket={server.ticket('alice')}"),
        socket(f"{server.ws_url}/ws?ticket={server.ticket('alice')}", max_size=None) as fast,
    ):
        subscribed(fast)
        assert server.channel.stats().subscribers == 2
        for i in range(1000):  # in step with the fast reader, as a healthy dashboard keeps up
            server.publish(user_channel("alice"), {**event(i), "pad": padding})
            message = recv_json(fast)
            assert message["data"]["i"] == i, "the fast socket lost or reordered messages"

        # The stalled socket's queue overflowed, then it was closed as too slow (1013).
        deadline = time.monotonic() + 15
        while server.channel.stats().subscribers > 1:
            assert time.monotonic() < deadline, "the stalled socket was never closed"
            time.sleep(0.05)
        assert server.channel.stats().dropped_slow > 0
        server.publish(user_channel("alice"), event(1000))
        assert recv_json(fast) == event(1000)


@pytest.mark.redis
def test_live_ticket_minted_on_one_server_opens_a_socket_on_another(redis_setup: Setup) -> None:
    first, second = redis_setup.open_server(), redis_setup.open_server()
    with socket(f"{second.ws_url}/ws?ticket={first.ticket('alice')}") as ws:
        assert subscribed(ws) == user_channel("alice")
        first.publish(user_channel("alice"), event(1))  # published by another process
        assert recv_json(ws) == event(1)


@pytest.mark.redis
def test_live_redis_down_refuses_tickets_and_sockets_then_recovers(redis_setup: Setup) -> None:
    setup = redis_setup
    assert setup.redis is not None
    server = setup.open_server()
    ticket = server.ticket("alice")
    setup.redis.kill()
    response = httpx.post(
        f"{server.http_url}/api/v1/ws-ticket", headers={"X-Test-User": "alice"}, timeout=10
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    with socket(f"{server.ws_url}/ws?ticket={ticket}") as ws:
        assert close_of(ws) == (1013, "live push is temporarily unavailable")
    setup.redis.start()

    def reconnected() -> str:
        deadline = time.monotonic() + 15
        while True:
            response = httpx.post(
                f"{server.http_url}/api/v1/ws-ticket", headers={"X-Test-User": "alice"}
            )
            if response.status_code == 200 or time.monotonic() > deadline:
                assert response.status_code == 200, response.text
                ticket: str = response.json()["ticket"]
                return ticket
            time.sleep(0.1)

    with socket(f"{server.ws_url}/ws?ticket={reconnected()}") as ws:
        assert subscribed(ws) == user_channel("alice")
        for i in range(150):  # until the server's subscriber side is back too
            server.publish(user_channel("alice"), event(i))
            with contextlib.suppress(TimeoutError):
                message = json.loads(ws.recv(timeout=0.1))
                if message["type"] == "plugin.event":
                    break
        else:
            pytest.fail("live messages did not resume after Redis came back")


def test_live_socket_closes_once_its_session_or_key_ends(setup: Setup) -> None:
    ended: set[str] = set()

    def still_valid(grant: Grant) -> bool:
        return not {grant.user_id, grant.session_id, grant.key_id} & ended

    server = setup.open_server(still_valid=still_valid, revalidate_s=0.05)
    laptop, phone = server.ticket("alice", "s-laptop"), server.ticket("alice", "s-phone")
    by_key = server.ticket("bob")
    ended_early = server.ticket("alice", "s-old")
    ended.add("s-old")
    with (
        socket(f"{server.ws_url}/ws?ticket={laptop}") as first,
        socket(f"{server.ws_url}/ws?ticket={phone}") as second,
        socket(f"{server.ws_url}/ws?ticket={by_key}") as third,
        socket(f"{server.ws_url}/ws?ticket={ended_early}") as stale,
    ):
        assert close_of(stale) == (1008, REVOKED)  # a ticket outliving its session opens nothing
        for ws in (first, second, third):
            subscribed(ws)

        ended.add("s-laptop")  # a logout: only that device's socket closes

        assert close_of(first) == (1008, REVOKED)
        server.publish(user_channel("alice"), event(1))
        assert recv_json(second) == event(1)
        ended.add("key-of-bob")  # a deleted key
        assert close_of(third) == (1008, REVOKED)
        ended.add("alice")  # a deleted account
        assert close_of(second) == (1008, REVOKED)


def test_live_grant_round_trips_through_a_ticket() -> None:
    for grant in (Grant("u1", session_id="s1"), Grant("u1", key_id="k1"), Grant("u1")):
        assert Grant.decode(grant.encode()) == grant
    assert Grant.decode("u1") == Grant("u1")  # a ticket minted before grants existed
