"""The after-batch seam against chdb: subscribers are told once per batch, after its writes,
and a subscriber that fails never fails nor repeats them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from eventlog.port import Delivered
from processors.handlers import HeartbeatProjector
from processors.projectors.batches import ProjectedBatch
from projections.clickhouse import ClickHouseProjectionStore
from schemas.events import ACCOUNTS_TOPIC, HEARTBEATS_TOPIC, encode_event
from schemas.heartbeat import Heartbeat
from tests.integration import test_clickhouse_store as store_tests
from tests.integration.test_erasure_projection import account
from tests.integration.test_heartbeat_deletions import tables
from tests.support.store_rows import DAY, beats, epoch, erased, received

pytestmark = pytest.mark.clickhouse

chdb_url = store_tests.chdb_url


class WriteCountingStore(ClickHouseProjectionStore):
    """The real store, counting the heartbeats it is asked to archive."""

    def __init__(self, url: str) -> None:
        super().__init__(url, database=f"t_{uuid.uuid4().hex[:12]}")
        self.inserted = 0

    def insert_heartbeats(self, hbs: Sequence[Heartbeat]) -> None:
        self.inserted += len(hbs)
        super().insert_heartbeats(hbs)


class Recorder:
    """Keeps each batch it is told of, with the day rows the store held at that moment."""

    def __init__(self, store: ClickHouseProjectionStore) -> None:
        self.store = store
        self.told: list[tuple[ProjectedBatch, list[Any]]] = []

    def after_batch(self, batch: ProjectedBatch) -> None:
        self.told.append((batch, self.store.daily_rows("u1", DAY, DAY)))


class Broken:
    def __init__(self) -> None:
        self.calls = 0

    def after_batch(self, batch: ProjectedBatch) -> None:
        self.calls += 1
        raise RuntimeError("a plugin hook blew up")


@pytest.fixture
def stores(chdb_url: str) -> Iterator[list[WriteCountingStore]]:
    created = [WriteCountingStore(chdb_url) for _ in range(2)]
    for store in created:
        store.migrate()
    yield created
    for store in created:
        store.close()


def record(topic: str, offset: int, event: Any) -> Delivered:
    return Delivered(topic, 0, offset, event.user_id.encode(), encode_event(event), 0)


def test_subscribers_are_told_once_per_batch_after_its_writes(
    stores: list[WriteCountingStore],
) -> None:
    store = stores[0]
    recorder = Recorder(store)
    projector = HeartbeatProjector(store, subscribers=[recorder], today=lambda: DAY)

    result = projector.handle(
        [
            received("u1", beats("u1", "a", 10, 3), "r1"),
            erased("u2", None, None, "x"),
            received("u1", beats("u1", "b", 14, 2), "r2"),
        ]
    )
    assert len(recorder.told) == 1
    batch, rows_seen = recorder.told[0]
    assert batch.result == result
    assert [row.heartbeat_count for row in rows_seen] == [5]  # both segments written before
    # One pass per segment and one for the erasure, in log order.
    assert [len(p.heartbeats) for p in batch.passes] == [3, 0, 2]
    assert [e.event_id for e in batch.result.erasures] == ["x"]

    assert projector.handle_accounts(account("u1", 10)) == 1
    assert recorder.told[-1][0].members == 1

    records = [
        record(HEARTBEATS_TOPIC, 7, received("u1", beats("u1", "c", 16, 1), "r3")),
        *(record(ACCOUNTS_TOPIC, 20 + i, e) for i, (_, e) in enumerate(account("u3", 20))),
    ]
    combined = projector.handle_records(records)
    assert len(recorder.told) == 3  # the records of both topics are one batch
    assert recorder.told[-1][0].result == combined
    assert recorder.told[-1][0].members == 1
    assert [row.heartbeat_count for row in recorder.told[-1][1]] == [6]


def test_a_failing_subscriber_neither_fails_nor_repeats_the_writes(
    stores: list[WriteCountingStore],
) -> None:
    broken, after = Broken(), Recorder(stores[0])
    failing = HeartbeatProjector(stores[0], subscribers=[broken, after], today=lambda: DAY)
    plain = HeartbeatProjector(stores[1], today=lambda: DAY)
    batch = [
        received("u1", beats("u1", "a", 10, 4), "r1"),
        erased("u1", epoch(10), epoch(10, 3), "range"),
    ]

    results = [projector.handle(batch) for projector in (failing, plain)]

    assert results[0] == results[1]
    assert broken.calls == 1
    assert len(after.told) == 1  # the next subscriber is still told
    assert stores[0].inserted == stores[1].inserted == 4  # written once
    assert tables(stores[0]) == tables(stores[1])
