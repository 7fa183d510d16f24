"""A rebalance revokes the runner's partitions mid-batch: its commit is refused for good, so it
drops the batch and reads on instead of retrying the commit forever (a real broker process)."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import pytest

from eventlog.kafka import KafkaEventLog
from eventlog.port import (
    Delivered,
    EventLog,
    LogReader,
    PartitionsRevoked,
    Record,
    TopicPartition,
)
from processors.projectors.batches import BatchResult
from processors.runner import ProjectionRunner
from schemas.events import ACCOUNTS_TOPIC, HEARTBEATS_TOPIC
from tests.brokers import Broker, NoidaBroker, TansuBroker

pytestmark = pytest.mark.kafka

# Tansu joins take about half the session timeout; noida, like Kafka, refuses less than 6 s.
_SESSION_TIMEOUT_MS = {"tansu": 2000, "noida": 6000}


@pytest.fixture(params=["tansu", "noida"])
def broker(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[str, Broker]]:
    # A broker of its own: the runner reads the fixed topic names.
    kind: str = request.param
    instance = TansuBroker() if kind == "tansu" else NoidaBroker(work_dir=tmp_path / "noida")
    try:
        instance.start()
        yield kind, instance
    finally:
        instance.close()


@pytest.fixture
async def kafka_log(broker: tuple[str, Broker]) -> AsyncIterator[KafkaEventLog]:
    kind, instance = broker
    log = KafkaEventLog(
        instance.bootstrap,
        default_partitions=2,
        request_timeout_ms=5000,
        session_timeout_ms=_SESSION_TIMEOUT_MS[kind],
    )
    await log.start()
    await log.ensure_topics({HEARTBEATS_TOPIC: 2, ACCOUNTS_TOPIC: 1})
    try:
        yield log
    finally:
        await log.close()


class _CountingReader:
    """A reader that counts commit attempts and remembers what they raised."""

    def __init__(self, inner: LogReader) -> None:
        self._inner = inner
        self.commits = 0
        self.refused: list[BaseException] = []

    async def start(self) -> None:
        await self._inner.start()

    async def fetch(self, max_records: int, timeout_s: float) -> list[Delivered]:
        return await self._inner.fetch(max_records, timeout_s)

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.commits += 1
        try:
            await self._inner.commit(offsets)
        except Exception as exc:
            self.refused.append(exc)
            raise

    async def seek_to_beginning(self) -> None:
        await self._inner.seek_to_beginning()

    async def positions(self) -> dict[TopicPartition, int]:
        return await self._inner.positions()

    async def close(self) -> None:
        await self._inner.close()


class _LogWithCountingReader:
    def __init__(self, inner: KafkaEventLog) -> None:
        self._inner = inner
        self.readers: list[_CountingReader] = []

    def reader(self, topics: Sequence[str], group: str) -> LogReader:
        reader = _CountingReader(self._inner.reader(topics, group))
        self.readers.append(reader)
        return reader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _HoldingProjector:
    """Holds its first batch until released (the rebalance happens meanwhile)."""

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.release = threading.Event()
        self.batches: list[list[Delivered]] = []

    def handle_records(self, records: Sequence[Delivered]) -> BatchResult:
        self.batches.append(list(records))
        if len(self.batches) == 1:
            self.holding.set()
            assert self.release.wait(60)
        return BatchResult(0, 0)


async def test_commit_of_revoked_partitions_is_dropped_and_the_runner_moves_on(
    kafka_log: KafkaEventLog, caplog: pytest.LogCaptureFixture
) -> None:
    # Two keys per partition of the heartbeats topic, so the first batch spans both.
    await kafka_log.append(
        [Record(HEARTBEATS_TOPIC, f"user-{i}".encode(), b"{}") for i in range(12)]
    )
    group = f"g-{uuid.uuid4().hex[:8]}"
    log = _LogWithCountingReader(kafka_log)
    projector = _HoldingProjector()
    runner = ProjectionRunner(
        log,  # type: ignore[arg-type]
        projector,  # type: ignore[arg-type]
        group=group,
        wait_s=1.0,
        dead_letter=_no_dead_letters,
    )
    await runner.start()
    step = asyncio.create_task(runner.step())
    assert await asyncio.to_thread(projector.holding.wait, 30)
    first = projector.batches[0]
    assert {r.partition for r in first if r.topic == HEARTBEATS_TOPIC} == {0, 1}

    # A second member joins: the group rebalances and one heartbeats partition moves to it.
    other: EventLog = kafka_log
    second = other.reader([HEARTBEATS_TOPIC, ACCOUNTS_TOPIC], group)
    await second.start()
    try:
        projector.release.set()
        caplog.set_level(logging.INFO, logger="processors.runner")
        # Before the fix the commit was retried forever and this step never returned.
        done = await asyncio.wait_for(step, 30)
        assert done == 0  # nothing of the batch was committed
        reader = log.readers[0]
        assert reader.commits == 1
        assert isinstance(reader.refused[0], PartitionsRevoked)
        assert "rebalance revoked" in caplog.text
        assert "commit failed, retrying" not in caplog.text

        # The second member gets its partition's records from the start (nothing committed)...
        theirs = await _read(second, lambda got: len(got) >= 1)
        their_partitions = {r.partition for r in theirs if r.topic == HEARTBEATS_TOPIC}
        assert len(their_partitions) == 1
        # ...and the runner carries on with the partition it kept: read again, then committed.
        mine = {0, 1} - their_partitions
        for _ in range(20):
            if await runner.step():
                break
        again = projector.batches[-1]
        assert {r.partition for r in again if r.topic == HEARTBEATS_TOPIC} == mine
        expected = sorted(
            (r.partition, r.offset)
            for r in first
            if r.partition in mine and r.topic == HEARTBEATS_TOPIC
        )
        assert sorted((r.partition, r.offset) for r in again if r.topic == HEARTBEATS_TOPIC) == (
            expected
        )
        assert reader.refused[1:] == []
    finally:
        await second.close()
        await runner.close()


async def _no_dead_letters(record: Delivered, exc: BaseException, attempts: int) -> None:
    raise AssertionError(f"nothing should be dead-lettered here: {exc}")


async def _read(reader: LogReader, enough: Any) -> list[Delivered]:
    got: list[Delivered] = []
    for _ in range(30):
        got += await reader.fetch(100, 0.5)
        if enough(got):
            return got
    return got
