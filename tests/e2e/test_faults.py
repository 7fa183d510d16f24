"""Breaking things on purpose: nothing acknowledged may be lost, nothing may be double counted.

Each test sends heartbeats that contribute a known number of seconds each (spaced beyond the
timeout, 30 s of explicit coverage), records which requests were acknowledged with a 2xx, breaks
a part, and then checks the stats equal exactly what was acknowledged.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from eventlog.kafka import KafkaEventLog
from processors.decoding import decode_heartbeat_events
from schemas.events import HEARTBEATS_TOPIC, HeartbeatsReceived
from tests.brokers import Broker, NoidaBroker
from tests.e2e.harness import Client, CodeTrackrProcess, eventually, run_cli, snapshot_tables
from tests.e2e.test_durability_and_replay import COVER_S, SPACING_S, aligned_start

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse, pytest.mark.slow]


def numbered_batch(start: float, first: int, size: int) -> list[dict[str, object]]:
    return [
        {
            "project": "faults",
            "file": "f.py",
            "time": start + (first + i) * SPACING_S,
            "duration": COVER_S,
        }
        for i in range(size)
    ]


class Sender:
    """Concurrent clients sending distinct batches until stopped; remembers what got a 2xx."""

    def __init__(
        self, url: str, api_key: str, start: float, *, batch: int = 5, finish_pending: bool = False
    ) -> None:
        self.url = url
        self.finish_pending = finish_pending
        self.abandoned: set[int] = set()
        self.api_key = api_key
        self.start = start
        self.batch = batch
        self.acknowledged: set[int] = set()
        self.statuses: list[int] = []
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _claim(self) -> int:
        with self._lock:
            first = self._next
            self._next += self.batch
            return first

    def _has_room(self) -> bool:
        """Heartbeat times must stay in the past (the server rightly refuses future ones)."""
        last = self.start + (self._next + self.batch) * SPACING_S
        return self._next < 2000 * self.batch and last < time.time() - 3600

    async def _client(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=10.0) as http:
            while not self._stop.is_set() and self._has_room():
                await self._deliver(http, self._claim())

    async def _deliver(self, http: httpx.AsyncClient, first: int) -> None:
        """Send one batch until it is acknowledged, as editors' offline queues do."""
        body = numbered_batch(self.start, first, self.batch)
        give_up: float | None = None
        while True:
            try:
                response = await http.post(
                    "/api/v1/heartbeats", json=body, headers={"X-API-Key": self.api_key}
                )
            except httpx.HTTPError:
                response = None
            if response is not None:
                self.statuses.append(response.status_code)
                if response.status_code == 200:
                    self.acknowledged.update(range(first, first + self.batch))
                    return
            if self._stop.is_set():
                give_up = give_up or time.monotonic() + (30.0 if self.finish_pending else 0.0)
                if time.monotonic() >= give_up:
                    self.abandoned.update(range(first, first + self.batch))
                    return
            await asyncio.sleep(0.05)

    async def _run(self, clients: int) -> None:
        await asyncio.gather(*(self._client() for _ in range(clients)))

    def begin(self, clients: int = 8) -> Sender:
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(clients),), daemon=True)
        self._thread.start()
        return self

    def end(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(60)

    def expected_seconds(self) -> int:
        return len(self.acknowledged) * COVER_S


def _equal(a: object, b: object) -> None:
    assert a == b


def test_kill_9_of_serve_under_load_loses_nothing_and_matches_a_replay(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = CodeTrackrProcess("serve", data).start()
    user = Client(server.url)
    sender = Sender(server.url, user.api_key, aligned_start(20, "UTC")).begin()
    eventually(lambda: _equal(len(sender.acknowledged) >= 300, True), timeout_s=60)
    server.kill9()  # mid-load: requests in flight, batches half projected
    sender.end()
    assert sender.acknowledged, "nothing was acknowledged before the kill"

    server = CodeTrackrProcess("serve", data, port=server.port).start()
    try:
        # Every acknowledged heartbeat counts exactly once. Batches cut off by the kill (no 2xx)
        # may or may not have been appended; if they were, they too count once, never twice.
        expected = sender.expected_seconds()
        total = eventually(
            lambda: _at_least(user.summary_total(range="all"), expected), timeout_s=90
        )
        assert total % COVER_S == 0
        assert total <= expected + len(sender.abandoned) * COVER_S
    finally:
        server.stop()
    url = f"chdb://{(data / 'clickhouse').resolve()}"
    live = snapshot_tables(url)
    run_cli(["replay", "--data-dir", str(data), "--quiet"])
    assert snapshot_tables(url) == live


def _at_least(value: int, minimum: int) -> int:
    assert value >= minimum
    return value


async def _heartbeat_times_on_log(bootstrap: str) -> set[float]:
    """Every heartbeat time on the heartbeats topic, read from the start by a fresh group."""
    log = KafkaEventLog(bootstrap)
    await log.start()
    try:
        ends = await log.end_offsets(HEARTBEATS_TOPIC)
        reader = log.reader([HEARTBEATS_TOPIC], group=f"check-{uuid.uuid4().hex}")
        await reader.start()
        times: set[float] = set()
        try:
            await reader.seek_to_beginning()
            while True:
                positions = await reader.positions()
                if all(positions.get(tp, 0) >= end for tp, end in ends.items()):
                    break
                events, _ = decode_heartbeat_events(await reader.fetch(1000, 1.0))
                times.update(
                    hb.time
                    for event in events
                    if isinstance(event, HeartbeatsReceived)
                    for hb in event.heartbeats
                )
        finally:
            await reader.close()
        return times
    finally:
        await log.close()


@pytest.fixture
def noida(tmp_path: Path) -> Iterator[Broker]:
    broker = NoidaBroker(work_dir=tmp_path / "broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


def test_broker_outage_answers_503_and_ingest_recovers_without_restart(
    noida: Broker, tmp_path: Path
) -> None:
    env = {
        "CODETRACKR_EVENT_LOG_URL": f"kafka://{noida.bootstrap}",
        "CODETRACKR_JWT_SECRET": "fault-secret-" + "y" * 40,
    }
    server = CodeTrackrProcess("serve", tmp_path / "serve", env=env).start()
    try:
        user = Client(server.url)
        start = aligned_start(30, "UTC")
        sender = Sender(server.url, user.api_key, start, batch=2, finish_pending=True)
        sender.begin(clients=4)
        eventually(lambda: _equal(len(sender.acknowledged) >= 20, True), timeout_s=60)
        noida.pause()  # hung and unreachable (noida loses acknowledged records across a stop)
        outage_started = len(sender.statuses)
        eventually(lambda: _equal(503 in sender.statuses[outage_started:], True), timeout_s=60)
        during = len(sender.statuses)
        time.sleep(2.0)
        outage = sender.statuses[outage_started:during]
        noida.resume()
        # Ingest recovers by itself: new requests are acknowledged again, same server process.
        recovered_from = len(sender.acknowledged)
        eventually(
            lambda: _equal(len(sender.acknowledged) > recovered_from + 10, True), timeout_s=90
        )
        sender.end()
        assert server.proc is not None
        assert server.proc.poll() is None
        assert set(outage) <= {200, 503}, outage
        assert 503 in outage
        assert not sender.abandoned
        # First the log itself: every acknowledged heartbeat must be on it after the outage.
        on_log = asyncio.run(_heartbeat_times_on_log(noida.bootstrap))
        acknowledged = {start + i * SPACING_S for i in sender.acknowledged}
        missing = sorted(acknowledged - on_log)
        assert not missing, f"{len(missing)} acknowledged heartbeats are not on the log"
        # Batches answered 503 were retried until acknowledged; any that reached the log before
        # its 503 collapse with their retry, so each heartbeat counts exactly once.
        expected = sender.expected_seconds()
        eventually(lambda: _equal(user.summary_total(range="all"), expected), timeout_s=90)
    finally:
        server.stop()
