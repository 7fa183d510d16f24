"""Deleting heartbeats (``HeartbeatsDeleted``) against the real engine: chdb in-process and the
chdb HTTP stand-in (the fixtures of :mod:`tests.integration.test_clickhouse_store`).

A deletion is a tombstone that every archive reader honours, so the projector's result must not
depend on the order or batching of the events, nor on redeliveries: the same log gives the same
tables however it is replayed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from processors.handlers import HeartbeatProjector
from projections.clickhouse import ClickHouseProjectionStore
from projections.daily import compute_day
from schemas.events import HeartbeatEvent, HeartbeatsReceived
from schemas.heartbeat import Heartbeat
from tests.integration import test_clickhouse_store as store_tests
from tests.integration.test_clickhouse_store import new_store
from tests.support.store_inspect import snapshot
from tests.support.store_rows import DAY, NEXT_DAY, deleted, epoch, make_heartbeat

pytestmark = pytest.mark.clickhouse

# The store fixtures: chdb on a session-wide path, the HTTP stand-in, a migrated store per test.
chdb_url = store_tests.chdb_url
standin_url = store_tests.standin_url
store_url = store_tests.store_url
store = store_tests.store


def received(heartbeats: Sequence[Heartbeat], event_id: str = "rec") -> HeartbeatsReceived:
    return HeartbeatsReceived(
        event_id=event_id, user_id="u1", occurred_at=epoch(12), heartbeats=tuple(heartbeats)
    )


@contextmanager
def fresh_store(url: str) -> Iterator[ClickHouseProjectionStore]:
    created = new_store(url)
    created.migrate()
    try:
        yield created
    finally:
        created.close()


def tables(target: ClickHouseProjectionStore) -> dict[str, list[tuple[Any, ...]]]:
    return {table: snapshot(target, table) for table in target.table_names()}


def test_projector_result_does_not_depend_on_order_batching_or_redelivery(
    store_url: str,
) -> None:
    kept = [make_heartbeat(f"k{i}", epoch(10, 3 * i)) for i in range(5)]
    gone = [make_heartbeat(f"g{i}", epoch(10, 3 * i + 1)) for i in range(3)]
    other_day = make_heartbeat("n", epoch(11, day=NEXT_DAY))
    batch = received([*kept, *gone, other_day])
    delete: HeartbeatEvent = deleted(["g0", "g1", "g2", "n"])  # "n" is not of that day
    runs: list[list[list[HeartbeatEvent]]] = [
        [[batch], [delete]],  # live
        [[batch], [delete], [batch], [delete]],  # redelivered
        [[batch, delete]],  # one replay batch
        [[delete], [batch]],  # tombstone first
    ]
    snapshots = []
    for run in runs:
        with fresh_store(store_url) as target:
            projector = HeartbeatProjector(target)
            for events in run:
                projector.handle(events)
            snapshots.append(tables(target))
            daily = target.daily_rows("u1", DAY, NEXT_DAY)
    assert all(snapshot == snapshots[0] for snapshot in snapshots)
    assert daily == [
        compute_day("u1", DAY, kept),
        compute_day("u1", NEXT_DAY, [other_day]),
    ]


def test_day_emptied_by_deletion_reads_as_zero(store_url: str) -> None:
    beats = [make_heartbeat(f"e{i}", epoch(10, i)) for i in range(3)]
    with fresh_store(store_url) as target:
        projector = HeartbeatProjector(target)
        projector.handle([received(beats)])
        assert target.active_dates("u1") == [DAY]

        result = projector.handle([deleted([hb.event_id for hb in beats])])

        assert (result.heartbeats, result.days, result.deleted_ids) == (0, 1, 3)
        (row,) = target.daily_rows("u1", DAY, DAY)
        assert (row.total_seconds, row.heartbeat_count) == (0.0, 0)
        assert target.active_dates("u1") == []
