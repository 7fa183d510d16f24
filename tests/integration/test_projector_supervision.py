"""The in-process projector under failure, against the real engine (chdb) and the embedded log:
a record the store rejects for good goes to the dead letters while its batch neighbours are
projected, ``/readyz`` reports it, a dead projector task makes ``/readyz`` fail until it is
restarted, and ``codetrackr dlq replay`` re-drives a dead letter exactly once."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from codetrackr.health import Readiness, install_health_routes
from eventlog.embedded import SqliteEventLog
from eventlog.port import Delivered, Record
from processors.deadletters import (
    DEAD_LETTER_TOPICS,
    DEAD_LETTERS_TOPIC,
    DeadLetterWriter,
    list_pending,
    read_topic,
    redrive,
)
from processors.erasure import erase_from_log
from processors.handlers import HeartbeatProjector
from processors.runner import ProjectionRunner
from processors.supervision import SupervisionPolicy
from projections.clickhouse import ClickHouseProjectionStore
from projections.ports import ProjectionStoreError
from schemas.events import (
    ACCOUNTS_TOPIC,
    HEARTBEATS_TOPIC,
    HeartbeatsReceived,
    UserDataErased,
    encode_event,
)
from schemas.heartbeat import Heartbeat
from tests.integration import test_clickhouse_store as store_tests
from tests.support.store_inspect import count_heartbeats
from tests.support.store_rows import epoch, make_heartbeat

pytestmark = pytest.mark.clickhouse

chdb_url = store_tests.chdb_url


class _RejectingStore:
    """The real store, except that it fails for good on heartbeats of project "poison" (as an
    engine rejecting a value would), after the rest of the batch may already be written."""

    def __init__(self, inner: ClickHouseProjectionStore) -> None:
        self._inner = inner
        self.rejected = 0

    def insert_heartbeats(self, hbs: Sequence[Heartbeat]) -> None:
        self._inner.insert_heartbeats([hb for hb in hbs if hb.project != "poison"])
        if any(hb.project == "poison" for hb in hbs):
            self.rejected += 1
            raise ProjectionStoreError("Code: 53. Type mismatch in column 'project'")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def store(chdb_url: str) -> Iterator[ClickHouseProjectionStore]:
    created = ClickHouseProjectionStore(chdb_url, database=f"sup_{uuid.uuid4().hex[:10]}")
    created.migrate()
    try:
        yield created
    finally:
        created.close()


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[SqliteEventLog]:
    opened = SqliteEventLog(tmp_path / "eventlog.sqlite", default_partitions=1)
    await opened.start()
    await opened.ensure_topics({HEARTBEATS_TOPIC: 1, ACCOUNTS_TOPIC: 1, **DEAD_LETTER_TOPICS})
    try:
        yield opened
    finally:
        await opened.close()


def received(user: str, project: str, minute: int) -> Record:
    hb = make_heartbeat(f"{user}-{minute}", epoch(10, minute), user_id=user, project=project)
    event = HeartbeatsReceived(
        event_id=f"e-{user}-{minute}", user_id=user, occurred_at=epoch(12), heartbeats=(hb,)
    )
    return Record(HEARTBEATS_TOPIC, user.encode(), encode_event(event))


async def readyz(readiness: Readiness) -> tuple[int, dict[str, Any]]:
    app = FastAPI()
    install_health_routes(app, "serve", readiness)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
        response = await client.get("/readyz")
    return response.status_code, response.json()


async def test_a_record_the_store_rejects_is_dead_lettered_and_projection_moves_on(
    log: SqliteEventLog, store: ClickHouseProjectionStore, caplog: pytest.LogCaptureFixture
) -> None:
    rejecting = _RejectingStore(store)
    sleeps: list[float] = []

    async def no_wait(delay: float) -> None:
        sleeps.append(delay)

    runner = ProjectionRunner(
        log,
        HeartbeatProjector(rejecting),  # type: ignore[arg-type]
        policy=SupervisionPolicy(max_attempts=3),
        sleep=no_wait,
    )
    readiness = Readiness(
        "serve", log, store_ping=store.table_names, projectors=[runner], expects_projector=True
    )
    # One fetch holds all three: the poison record sits between two innocent ones.
    await log.append(
        [received("alice", "core", 0), received("mallory", "poison", 1), received("bob", "web", 2)]
    )
    await runner.start()
    runner.health.alive = True  # as run_supervised sets it
    try:
        assert await runner.step() == 3
        # More heartbeats after the dead letter are projected as usual.
        await log.append([received("alice", "core", 3)])
        assert await runner.step() == 1

        assert count_heartbeats(store, "alice") == 2
        assert count_heartbeats(store, "bob") == 1
        assert count_heartbeats(store, "mallory") == 0
        assert rejecting.rejected >= 3  # the batch, then the lone record, three times
        assert "dead-lettered codetrackr.heartbeats[0]@1" in caplog.text

        dead = await read_topic(log, DEAD_LETTERS_TOPIC)
        assert len(dead) == 1
        letter = json.loads(dead[0].value)
        assert (letter["topic"], letter["partition"], letter["offset"]) == (HEARTBEATS_TOPIC, 0, 1)
        assert letter["attempts"] == 3
        assert "Type mismatch" in letter["error"]
        assert dead[0].key == b"mallory"
        pending = await list_pending(log)
        assert [(i, p.payload) for i, p in pending] == [(0, received("mallory", "poison", 1).value)]

        status, body = await readyz(readiness)
        assert status == 200, body  # a dead letter was handled: still ready
        assert body["checks"]["dead_letters"]["pending"] == 1
        (projector,) = body["checks"]["projector"]["projectors"]
        assert projector["dead_letters_written"] == 1
        assert projector["lag_records"] == 0
        assert body["checks"]["store"]["ok"]
        assert body["checks"]["log"]["ok"]

        # Re-driving appends the payload to its topic once; a second replay finds nothing.
        assert await redrive(log) == [0]
        assert await redrive(log) == []
        assert await list_pending(log) == []
        status, body = await readyz(readiness)
        assert body["checks"]["dead_letters"]["pending"] == 0
        assert body["checks"]["projector"]["projectors"][0]["lag_records"] == 1
    finally:
        await runner.close()


async def test_a_dead_projector_task_fails_readyz_at_once_and_is_restarted(
    log: SqliteEventLog,
    store: ClickHouseProjectionStore,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = ProjectionRunner(log, HeartbeatProjector(store))
    readiness = Readiness(
        "serve", log, store_ping=store.table_names, projectors=[runner], expects_projector=True
    )
    restart = asyncio.Event()
    died = asyncio.Event()

    async def held(delay: float) -> None:  # the restart waits until the test saw the failure
        died.set()
        await restart.wait()

    monkeypatch.setattr(runner, "_sleep", held)
    real_step = runner.step
    calls = 0

    async def failing_once() -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("reader state corrupted")
        return await real_step()

    monkeypatch.setattr(runner, "step", failing_once)
    stop = asyncio.Event()
    caplog.set_level(logging.ERROR, logger="processors.runner")
    task = asyncio.create_task(runner.run_supervised(stop))
    try:
        await asyncio.wait_for(died.wait(), 10)
        # Logged at once, with the traceback, and /readyz fails naming the projector.
        assert "the projector died" in caplog.text
        assert "RuntimeError: reader state corrupted" in caplog.text
        assert "Traceback" in caplog.text
        status, body = await readyz(readiness)
        assert status == 503
        assert body["error"]["details"]["failing"] == ["projector"]
        assert "reader state corrupted" in body["error"]["details"]["checks"]["projector"]["error"]

        restart.set()
        await log.append([received("carol", "core", 5)])
        for _ in range(100):
            if count_heartbeats(store, "carol") == 1:
                break
            await asyncio.sleep(0.05)
        assert count_heartbeats(store, "carol") == 1  # the restarted loop projects again
        status, body = await readyz(readiness)
        assert status == 200, body
        assert body["checks"]["projector"]["projectors"][0]["restarts"] == 1
    finally:
        stop.set()
        restart.set()
        await asyncio.wait_for(task, 10)
        await runner.close()


async def test_an_account_erasure_deletes_its_dead_letters_from_the_embedded_log(
    log: SqliteEventLog, tmp_path: Path
) -> None:
    writer = DeadLetterWriter(log)
    for user in ("mallory", "bob"):
        poisoned = received(user, "secret-project-of-" + user, 1)
        delivered = Delivered(HEARTBEATS_TOPIC, 0, 9, poisoned.key, poisoned.value, 0)
        await writer(delivered, ProjectionStoreError("rejected"), 3)

    await erase_from_log(log, UserDataErased(event_id="d", user_id="mallory", occurred_at=0))

    assert [letter.key for _, letter in await list_pending(log)] == [b"bob"]
    await log.close()
    raw = (tmp_path / "eventlog.sqlite").read_bytes()
    assert base64.b64encode(received("mallory", "secret-project-of-mallory", 1).value) not in raw
