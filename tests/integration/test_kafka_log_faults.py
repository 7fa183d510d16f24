"""KafkaEventLog under broker failure: fail fast while the broker is down, recover by itself."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from eventlog.kafka import KafkaEventLog
from eventlog.port import LogUnavailable, Record
from tests.brokers import NoidaBroker

pytestmark = pytest.mark.kafka

_REQUEST_TIMEOUT_MS = 3000
# append may take one request timeout plus a bounded producer restart; it must never hang.
_FAIL_WITHIN_S = 3 * _REQUEST_TIMEOUT_MS / 1000


@pytest.fixture
def noida(tmp_path: Path) -> Iterator[NoidaBroker]:
    broker = NoidaBroker(work_dir=tmp_path / "noida")
    try:
        broker.start()
        yield broker
    finally:
        broker.close()


@pytest.fixture
async def kafka_log(noida: NoidaBroker) -> AsyncIterator[KafkaEventLog]:
    log = KafkaEventLog(
        noida.bootstrap,
        client_id="faults",
        default_partitions=2,
        request_timeout_ms=_REQUEST_TIMEOUT_MS,
        session_timeout_ms=6000,
    )
    await log.start()
    try:
        yield log
    finally:
        await log.close()


async def timed_failure(log: KafkaEventLog, record: Record) -> float:
    started = time.monotonic()
    with pytest.raises(LogUnavailable):
        await log.append([record])
    return time.monotonic() - started


async def test_kafka_log_append_fails_fast_while_broker_down_then_recovers(
    noida: NoidaBroker, kafka_log: KafkaEventLog
) -> None:
    topic = "faults.heartbeats"
    await kafka_log.append([Record(topic, b"user-1", b"before")])

    noida.stop()
    # First failure: records already routed to a known leader wait for the request timeout.
    assert await timed_failure(kafka_log, Record(topic, b"user-1", b"lost-1")) < _FAIL_WITHIN_S
    # Later failures, broker still down: a fresh producer cannot bootstrap and fails fast.
    assert await timed_failure(kafka_log, Record(topic, b"user-2", b"lost-2")) < _FAIL_WITHIN_S

    noida.start()  # same port, same data directory
    await kafka_log.append([Record(topic, b"user-1", b"after")])

    reader = kafka_log.reader([topic], "faults.verify")
    await reader.start()
    try:
        values: list[bytes] = []
        deadline = time.monotonic() + 20
        while b"after" not in values and time.monotonic() < deadline:
            values.extend(d.value for d in await reader.fetch(max_records=100, timeout_s=0.5))
    finally:
        await reader.close()
    # noida keeps its data dir across the restart; the failed appends may or may not be there.
    assert b"before" in values
    assert b"after" in values
    assert values.count(b"after") == 1
