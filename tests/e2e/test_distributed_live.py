"""Live push in the distributed mode: the workers publish through Redis, the api pushes.

On the topology of ``tests/e2e/topology.py`` (a broker, ClickHouse over HTTP, a ``redis-server``,
``codetrackr ingest``, ``codetrackr api`` and two ``codetrackr worker`` processes): a dashboard's
socket on the api process receives what a worker published after projecting the heartbeats sent
to the ingest process, and nobody else's socket does. Then Redis dies under load: live push
degrades, ingest, processing and reads do not notice, and live push resumes when Redis is back.

Both tests share one topology per broker (neither leaves it broken: Redis runs again after each).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from aiokafka.partitioner import murmur2
from websockets.sync.client import ClientConnection, connect

from live.port import user_channel
from live.redis import DEFAULT_PREFIX
from tests.e2e.harness import Client, CodeTrackrProcess, eventually
from tests.e2e.test_distributed import (
    Load,
    acknowledged,
    replay_matches,
    settle_and_check,
    start_load,
)
from tests.e2e.test_durability_and_replay import COVER_S, SPACING_S, aligned_start
from tests.e2e.test_live import received_within, recv_json
from tests.e2e.topology import Topology, distributed, worker_partitions
from tests.support.redis_server import RedisServer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kafka,
    pytest.mark.clickhouse,
    pytest.mark.redis,
    pytest.mark.slow,
]

LIVE_TYPES = {"heartbeat.accepted", "stats.changed"}


@pytest.fixture(scope="module", params=["noida", "tansu"])
def topology(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Topology]:
    root = tmp_path_factory.mktemp(f"distributed-live-{request.param}")
    with distributed(root, workers=2, partitions=6, broker_kind=request.param) as running:
        yield running


@pytest.fixture
def redis_up(topology: Topology) -> Iterator[RedisServer]:
    """The topology's Redis, running again after the test whatever the test did to it."""
    topology.redis.start()
    yield topology.redis
    topology.redis.start()


class LiveUser:
    """A user with an account on the api process who sends heartbeats to the ingest process."""

    def __init__(self, topology: Topology, project: str, days_ago: int = 2) -> None:
        self.topology = topology
        self.project = project
        self.client = Client(topology.api_url, timezone="UTC")
        self.user_id: str = self.client.get("/api/v1/user/me")["id"]
        self.start = aligned_start(days_ago, "UTC")
        self.sent = 0  # heartbeats acknowledged by ingest

    def ticket_response(self) -> httpx.Response:
        return self.client.http.post("/api/v1/ws-ticket", headers=self.client.bearer)

    @contextlib.contextmanager
    def socket(self) -> Iterator[ClientConnection]:
        """A WebSocket on the api process, past its ``subscribed`` frame."""
        response = self.ticket_response()
        assert response.status_code == 200, response.text
        url = f"{self.topology.api_url.replace('http://', 'ws://')}/ws"
        with connect(f"{url}?ticket={response.json()['ticket']}", open_timeout=20) as ws:
            subscribed = recv_json(ws, 20)
            assert subscribed == {"type": "subscribed", "channel": f"user:{self.user_id}"}
            yield ws

    def next_time(self) -> float:
        """The time of the next heartbeat: 86 a day (see ``aligned_start``), then the next day."""
        day, slot = divmod(self.sent, 86)
        return self.start + day * 86_400 + slot * SPACING_S

    def heartbeat(self) -> float:
        """One more heartbeat (COVER_S seconds of time) through the ingest process."""
        t = self.next_time()
        body = {"project": self.project, "file": "src/a.py", "time": t, "duration": COVER_S}
        response = httpx.post(
            f"{self.topology.ingest_url}/api/v1/heartbeat",
            json=body,
            headers=self.client.key_header,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        self.sent += 1
        return t

    def total(self) -> int:
        return self.client.summary_total(range="all")

    def partition(self) -> int:
        """The heartbeats partition of this user (the ingest keys records by user id)."""
        return (int(murmur2(self.user_id.encode())) & 0x7FFFFFFF) % self.topology.partitions


def pushed_until(ws: ClientConnection, user: LiveUser, timeout_s: float) -> list[Any]:
    """Send heartbeats until the socket receives a ``heartbeat.accepted`` about one of them.

    Returns every message read meanwhile (earlier ones still buffered on the socket included).
    Resent because a publisher that failed drops messages for its back-off (up to 5 s).
    """
    seen: list[dict[str, Any]] = []
    first: float | None = None
    deadline = time.monotonic() + timeout_s
    while not any(_about_since(m, first) for m in seen):
        assert time.monotonic() < deadline, f"nothing pushed for {user.project}: {seen}"
        sent = user.heartbeat()
        first = sent if first is None else first
        seen += received_within(ws, 1.0)
    return seen


def _about_since(message: dict[str, Any], since: float | None) -> bool:
    return (
        since is not None
        and message["type"] == "heartbeat.accepted"
        and message["last_heartbeat_at"] >= since
    )


@contextlib.contextmanager
def redis_tap(server: RedisServer, user_id: str) -> Iterator[redis.client.PubSub]:
    """A plain Redis subscriber of a user's channel: what the workers publish, as Redis has it."""
    with redis.Redis.from_url(server.url, socket_timeout=10) as raw, raw.pubsub() as pubsub:
        pubsub.subscribe(DEFAULT_PREFIX + user_channel(user_id))
        confirmed = pubsub.get_message(timeout=10)
        assert confirmed is not None
        assert confirmed["type"] == "subscribe", confirmed
        yield pubsub


def tapped(pubsub: redis.client.PubSub, wait_s: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        message = pubsub.get_message(timeout=left)
        if message is not None and message["type"] == "message":
            out.append(json.loads(message["data"]))
    return out


def processes(topology: Topology) -> list[CodeTrackrProcess]:
    return [p for p in (topology.api, topology.ingest, *topology.workers) if p is not None]


def assert_all_running(topology: Topology) -> None:
    for proc in processes(topology):
        assert proc.proc is not None
        assert proc.proc.poll() is None, f"{proc.command} exited:\n{proc.logs()}"


def test_a_worker_pushes_through_redis_to_the_owners_socket_on_the_api(
    topology: Topology, redis_up: RedisServer
) -> None:
    alice = LiveUser(topology, "alice-project")
    bob = LiveUser(topology, "bob-project")
    with (
        alice.socket() as alice_ws,
        bob.socket() as bob_ws,
        redis_tap(redis_up, alice.user_id) as tap,
    ):
        last = max(alice.heartbeat() for _ in range(5))
        expected = 5 * COVER_S
        messages: list[dict[str, Any]] = []

        def stats_arrived() -> None:
            messages.extend(received_within(alice_ws, 0.5))
            stats = [m for m in messages if m["type"] == "stats.changed"]
            assert stats, messages
            assert stats[-1]["days"][-1]["total_seconds"] == expected, messages

        eventually(stats_arrived, timeout_s=120)
        messages += received_within(alice_ws, 1.0)
        assert {m["type"] for m in messages} <= LIVE_TYPES, messages
        accepted = [m for m in messages if m["type"] == "heartbeat.accepted"]
        # One per processed batch: 5 in all (more only if a rebalance redelivered a batch).
        assert sum(m["count"] for m in accepted) >= 5, accepted
        assert max(m["last_heartbeat_at"] for m in accepted) == last
        assert {m["project"] for m in accepted} == {alice.project}
        # What the dashboard is told is what the api process answers from then on.
        day = [m for m in messages if m["type"] == "stats.changed"][-1]["days"][-1]
        assert day["heartbeat_count"] == 5
        assert day["breakdown"]["project"] == {alice.project: expected}
        daily = alice.client.get("/api/v1/stats/daily", start=day["date"], end=day["date"])
        assert daily["daily"] == [{"date": day["date"], "seconds": expected}]
        assert alice.total() == expected
        # It came through Redis: a plain subscriber of alice's channel saw exactly these messages
        # (the api process publishes nothing of this kind: a worker did, after projecting).
        assert tapped(tap, 1.0) == messages

        # Bob's socket is live, and gets his own heartbeat and nothing of alice's.
        seen = pushed_until(bob_ws, bob, timeout_s=120)

        def all_of_bobs_arrived() -> None:
            seen.extend(received_within(bob_ws, 0.5))
            counted = sum(m["count"] for m in seen if m["type"] == "heartbeat.accepted")
            assert counted >= bob.sent, seen

        eventually(all_of_bobs_arrived, timeout_s=60)
        assert {m["type"] for m in seen} <= LIVE_TYPES, seen
        assert alice.project not in json.dumps(seen), seen
        assert received_within(alice_ws, 0.5) == [], "alice received something of bob's"


def probes_on_every_worker(topology: Topology) -> list[LiveUser]:
    """Users whose heartbeats land on partitions of different workers, one user per worker."""
    shares = [worker_partitions(worker) for worker in topology.workers]
    assert all(shares), shares
    assert not set.intersection(*shares), shares
    probes: dict[int, LiveUser] = {}
    for n in range(40):
        user = LiveUser(topology, f"probe-{n}", days_ago=3 + n)
        owner = next(i for i, share in enumerate(shares) if user.partition() in share)
        probes.setdefault(owner, user)
        if len(probes) == len(shares):
            return [probes[i] for i in sorted(probes)]
    raise AssertionError(f"no users found for every worker: {shares}")


@contextlib.contextmanager
def sending(topology: Topology, users: int, start_days_ago: int) -> Iterator[Load]:
    """Concurrent load on the ingest process; its senders are stopped even if the test fails."""
    load = start_load(topology, users=users, start_days_ago=start_days_ago)
    try:
        yield load
    finally:
        for _, sender in load:
            sender.end()


def test_redis_down_live_push_degrades_while_ingest_and_reads_keep_working(
    topology: Topology, redis_up: RedisServer, tmp_path: Path
) -> None:
    probes = probes_on_every_worker(topology)
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(probe.socket()) for probe in probes]
        for ws, probe in zip(sockets, probes, strict=True):  # both workers push before
            pushed_until(ws, probe, timeout_s=120)
        load = stack.enter_context(sending(topology, users=3, start_days_ago=60))
        eventually(lambda: _more_than(acknowledged(load), 30), timeout_s=90)

        redis_up.kill()
        try:
            outage_from = [len(sender.statuses) for _, sender in load]
            # Live push degrades: no new sockets (503 with Retry-After).
            refused = probes[0].ticket_response()
            assert refused.status_code == 503, refused.text
            assert refused.headers["Retry-After"] == "5"
            assert refused.json()["error"]["code"] == "unavailable"
            # Ingest keeps acknowledging, and what it acknowledges is processed and readable.
            during = acknowledged(load)
            eventually(lambda: _more_than(acknowledged(load), during + 60), timeout_s=90)
            for probe in probes:
                probe.heartbeat()
            marks = [(user, len(sender.acknowledged) * COVER_S) for user, sender in load]
            eventually(lambda: _all_projected(marks, probes), timeout_s=120)
            statuses = {
                status
                for (_, sender), first in zip(load, outage_from, strict=True)
                for status in sender.statuses[first:]
            }
            assert statuses == {200}, statuses
            assert_all_running(topology)
        finally:
            redis_up.start()

        # Live push resumes: each open socket is told it may have missed messages, then both
        # workers' messages flow again.
        for ws, probe in zip(sockets, probes, strict=True):
            since = probe.next_time()
            seen = pushed_until(ws, probe, timeout_s=120)
            assert {"type": "dropped", "count": None} in seen, seen
            gap = seen.index({"type": "dropped", "count": None})
            assert any(_about_since(m, since) for m in seen[gap + 1 :]), seen

        def ticket_again() -> None:
            response = probes[0].ticket_response()
            assert response.status_code == 200, response.text

        eventually(ticket_again, timeout_s=30)
        with probes[0].socket() as ws:  # and new sockets work again
            pushed_until(ws, probes[0], timeout_s=60)

        # Nothing acknowledged was lost or doubled, and the live tables equal a replay.
        settle_and_check(load)
        eventually(lambda: _all_projected([], probes), timeout_s=120)
    assert_all_running(topology)
    replay_matches(topology, tmp_path)


def _all_projected(at_least: list[tuple[Client, int]], exactly: list[LiveUser]) -> None:
    for client, seconds in at_least:
        assert client.summary_total(range="all") >= seconds
    for user in exactly:
        assert user.total() == user.sent * COVER_S


def _more_than(value: int, floor: int) -> None:
    assert value > floor, (value, floor)


def test_a_worker_tells_the_owners_socket_when_a_goal_is_reached(
    topology: Topology, redis_up: RedisServer
) -> None:
    owner = LiveUser(topology, "goal-project")
    made = owner.client.http.post(
        "/api/v1/users/current/goals",
        headers=owner.client.bearer,
        json={"type": "daily", "target_seconds": 60, "title": "a minute"},
    )
    assert made.status_code == 201, made.text
    goal_id = made.json()["data"]["id"]
    with owner.socket() as ws:
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 120
        sent = 0

        # A worker checks a goal once its account directory holds it: heartbeats until it does.
        def beat() -> float:
            nonlocal sent
            t = time.time() - 100 + sent
            body = {"project": "goal-project", "file": "src/a.py", "time": t, "duration": 90}
            response = httpx.post(
                f"{topology.ingest_url}/api/v1/heartbeat",
                json=body,
                headers=owner.client.key_header,
                timeout=30,
            )
            assert response.status_code == 200, response.text
            sent += 1
            return t

        while not any(m["type"] == "goal.reached" for m in seen):
            assert time.monotonic() < deadline, seen
            beat()
            seen += received_within(ws, 2.0)
        [reached] = [m for m in seen if m["type"] == "goal.reached"]
        assert (reached["goal_id"], reached["title"]) == (goal_id, "a minute")
        assert reached["current_seconds"] >= 60
        # Told once: another heartbeat of the same day is pushed, no second goal message.
        last = beat()
        later: list[dict[str, Any]] = []

        def pushed() -> None:
            later.extend(received_within(ws, 0.5))
            # The heartbeat's time is kept to the millisecond.
            assert any(_about_since(m, last - 0.001) for m in later), later

        eventually(pushed, timeout_s=60)
        later += received_within(ws, 2.0)
        assert [m for m in later if m["type"].startswith("goal.")] == []
