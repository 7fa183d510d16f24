"""Live push through a real ``codetrackr serve`` with Redis configured (a ``redis-server`` of the
test's own): tickets with real credentials, WebSockets as a dashboard opens them, messages
published on Redis as any process of the deployment would, and Redis going away.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from live.port import user_channel
from live.redis import DEFAULT_PREFIX
from tests.e2e.harness import Client, CodeTrackrProcess, eventually
from tests.support.redis_server import RedisServer, running_redis

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse, pytest.mark.redis]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    yield from running_redis()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[CodeTrackrProcess]:
    data = tmp_path_factory.mktemp("live") / "data"
    proc = CodeTrackrProcess("serve", data, env={"CODETRACKR_REDIS_URL": redis_server.url})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def redis_up(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The module's Redis, running again after the test whatever the test did to it."""
    redis_server.start()
    yield redis_server
    redis_server.start()


class User:
    def __init__(self, server: CodeTrackrProcess) -> None:
        self.server = server
        self.client = Client(server.url, timezone="UTC")
        self.user_id: str = self.client.get("/api/v1/user/me")["id"]

    def ticket(self, *, with_api_key: bool = False) -> str:
        headers = self.client.key_header if with_api_key else self.client.bearer
        response = self.client.http.post("/api/v1/ws-ticket", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["expires_in"] == 30
        ticket: str = response.json()["ticket"]
        return ticket

    def heartbeat(self, t: float, project: str = "core") -> None:
        body = {"project": project, "file": "src/a.py", "lang": "python", "time": t}
        response = self.client.http.post(
            "/api/v1/heartbeat", headers=self.client.key_header, json=body
        )
        assert response.status_code == 200, response.text


@contextlib.contextmanager
def live_socket(server: CodeTrackrProcess, ticket: str) -> Iterator[ClientConnection]:
    url = server.url.replace("http://", "ws://") + f"/ws?ticket={ticket}"
    with connect(url, open_timeout=10, close_timeout=2) as ws:
        yield ws


def recv_json(ws: ClientConnection, timeout_s: float = 10.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=timeout_s))
    return message


def received_within(ws: ClientConnection, wait_s: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait_s
    with contextlib.suppress(TimeoutError):
        while (left := deadline - time.monotonic()) > 0:
            out.append(recv_json(ws, left))
    return out


def publish(server: RedisServer, user_id: str, message: dict[str, Any]) -> int:
    """What a processor in any process of the deployment does; returns Redis's receiver count."""
    with redis.Redis.from_url(server.url, socket_timeout=5) as raw:
        receivers: int = raw.publish(DEFAULT_PREFIX + user_channel(user_id), json.dumps(message))
        return receivers


def event(i: int) -> dict[str, Any]:
    return {"type": "plugin.event", "plugin": "e2e", "hook": "on_tick", "data": {"i": i}}


def test_live_two_users_sockets_see_only_their_own_events(
    server: CodeTrackrProcess, redis_up: RedisServer
) -> None:
    alice, bob = User(server), User(server)
    with (
        live_socket(server, alice.ticket()) as alice_ws,
        live_socket(server, bob.ticket(with_api_key=True)) as bob_ws,
    ):
        assert recv_json(alice_ws) == {"type": "subscribed", "channel": f"user:{alice.user_id}"}
        assert recv_json(bob_ws) == {"type": "subscribed", "channel": f"user:{bob.user_id}"}

        assert publish(redis_up, alice.user_id, event(1)) >= 1
        assert recv_json(alice_ws) == event(1)

        now = time.time()
        for i in range(5):
            alice.heartbeat(now - 300 + 60 * i)
        eventually(lambda: _has_time(alice.client))  # projected: anything published is out

        assert received_within(bob_ws, 1.0) == [], "bob received something of alice's"
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + 15
        while not {"heartbeat.accepted", "stats.changed"} <= {m["type"] for m in messages}:
            assert time.monotonic() < deadline, f"alice's events did not arrive: {messages}"
            messages += received_within(alice_ws, 0.3)
        messages += received_within(alice_ws, 0.5)
        assert {m["type"] for m in messages} <= {"heartbeat.accepted", "stats.changed"}, messages
        accepted = [m for m in messages if m["type"] == "heartbeat.accepted"]
        assert sum(m["count"] for m in accepted) == 5
        # What the dashboard is told is what the API answers: the day's new total.
        day = [m for m in messages if m["type"] == "stats.changed"][-1]["days"][-1]
        daily = alice.client.get("/api/v1/stats/daily", start=day["date"], end=day["date"])
        assert daily["daily"][0]["seconds"] == round(day["total_seconds"])


def _has_time(client: Client) -> None:
    assert client.summary_total(range="7d") > 0


def test_live_ticket_is_single_use(server: CodeTrackrProcess, redis_up: RedisServer) -> None:
    alice = User(server)
    ticket = alice.ticket()
    with live_socket(server, ticket) as first:
        assert recv_json(first)["type"] == "subscribed"
        with live_socket(server, ticket) as again, pytest.raises(ConnectionClosed) as closed:
            recv_json(again)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        1008,
        "invalid, used or expired ticket",
    )


def test_live_redis_down_ingest_and_reads_keep_working(
    server: CodeTrackrProcess, redis_up: RedisServer
) -> None:
    alice = User(server)
    with live_socket(server, alice.ticket()) as ws:
        assert recv_json(ws)["type"] == "subscribed"
        redis_up.kill()

        alice.heartbeat(time.time() - 120)  # ingest: acknowledged as usual
        eventually(lambda: _has_time(alice.client))  # processing and reads: as usual
        refused = alice.client.http.post("/api/v1/ws-ticket", headers=alice.client.bearer)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "unavailable"

        redis_up.start()
        # The open socket survives the outage: once the server has resubscribed, messages
        # flow again, after a notice that some may have been lost.
        deadline = time.monotonic() + 20
        seen: list[dict[str, Any]] = []
        while not any(m["type"] == "plugin.event" for m in seen):
            assert time.monotonic() < deadline, f"live push did not resume: {seen}"
            publish(redis_up, alice.user_id, event(2))
            seen += received_within(ws, 0.2)
        assert {"type": "dropped", "count": None} in seen

    def ticket_again() -> None:
        response = httpx.post(
            f"{server.url}/api/v1/ws-ticket", headers=alice.client.bearer, timeout=10
        )
        assert response.status_code == 200, response.text

    eventually(ticket_again, timeout_s=15)


def test_live_leaderboard_position_and_public_board(
    server: CodeTrackrProcess, redis_up: RedisServer
) -> None:
    carol = User(server)
    public_url = server.url.replace("http://", "ws://") + "/ws/public"
    with (
        live_socket(server, carol.ticket()) as mine,
        connect(public_url, open_timeout=10, close_timeout=2) as board,
    ):
        assert recv_json(mine)["type"] == "subscribed"
        assert recv_json(board) == {"type": "subscribed", "channel": "public:leaderboard"}
        # Coding time first (live push proven healthy: an earlier test took Redis away), then
        # joining the board moves carol onto it.
        now = time.time()
        deadline = time.monotonic() + 30
        for second in range(200):  # resent until pushed: publishing may still be backing off
            carol.heartbeat(now - 200 + second)
            if "heartbeat.accepted" in [m["type"] for m in received_within(mine, 0.3)]:
                break
            assert time.monotonic() < deadline, "carol's heartbeats were not pushed"
        optin = carol.client.http.post(
            "/api/v1/user/profile/update",
            headers=carol.client.bearer,
            json={"is_public": True, "show_in_leaderboard": True},
        )
        assert optin.status_code == 200, optin.text
        seen: list[dict[str, Any]] = []
        while not any(m["type"] == "leaderboard.changed" for m in seen):
            assert time.monotonic() < deadline + 15, f"no leaderboard.changed: {seen}"
            seen += received_within(mine, 0.3)
        changed = [m for m in seen if m["type"] == "leaderboard.changed"][-1]
        assert changed["rank"] >= 1
        assert changed["previous_rank"] is None
        assert changed["total_seconds"] > 0
        body = httpx.get(f"{server.url}/api/v1/leaderboards/global", timeout=10).json()
        ranked = {e["username"]: e["rank"] for e in body["leaderboard"]}
        assert ranked[carol.client.username] == changed["rank"]  # the board says the same
        updates = [m for m in received_within(board, 1.0) if m["type"] == "leaderboard.updated"]
        assert updates, "the public board received no update"
        assert carol.client.username in [e["username"] for e in updates[-1]["entries"]]
