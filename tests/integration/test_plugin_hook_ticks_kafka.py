"""Of several hook processors in one consumer group on a real broker, exactly one fires ticks: the
one assigned the accounts topic's partition 0; when it leaves, the one that takes it over does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from accounts.directory import AccountDirectory
from eventlog.kafka import KafkaEventLog
from plugins_runtime.kv_sqlite import SqlitePluginKeyValue
from processors.plugin_hooks import PluginHookProcessor
from schemas.events import ACCOUNTS_TOPIC, HEARTBEATS_TOPIC
from tests.brokers import Broker, NoidaBroker, TansuBroker

pytestmark = pytest.mark.kafka

_SESSION_TIMEOUT_MS = {"tansu": 2000, "noida": 6000}


class _NoExecutor:
    async def run(self, *_: Any) -> Any:
        raise AssertionError("no hook runs in this test")


@pytest.fixture(params=["tansu", "noida"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Broker]]:
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


async def holders(processors: list[PluginHookProcessor]) -> list[bool]:
    for processor in processors:
        await processor.step()  # polls: a pending rebalance is applied
    return [await processor.holds_ticks() for processor in processors]


async def test_exactly_one_processor_of_a_group_ticks(
    kafka_log: KafkaEventLog, tmp_path: Path
) -> None:
    directory = AccountDirectory(kafka_log, shared_log=True)
    await directory.start()
    kv = SqlitePluginKeyValue(tmp_path / "kv.sqlite3")
    await kv.start()
    group = "hooks-ticks-test"
    processors = [
        PluginHookProcessor(kafka_log, directory, _NoExecutor(), kv, group=group, wait_s=0.1)
        for _ in range(2)
    ]
    try:
        await asyncio.gather(*(p.start() for p in processors))
        seen: list[bool] = []
        for _ in range(200):
            seen = await holders(processors)
            if sorted(seen) == [False, True]:
                break
        assert sorted(seen) == [False, True], seen
        assert [await p.tick() for p in processors if not await p.holds_ticks()] == [0]

        # The ticking member leaves: the other one takes partition 0, and the ticks, over.
        ticking = processors[seen.index(True)]
        other = processors[seen.index(False)]
        await ticking.close()
        for _ in range(300):
            if (await holders([other])) == [True]:
                break
        assert await other.holds_ticks()
    finally:
        for processor in processors:
            await processor.close()
        await kv.close()
        await directory.close()
