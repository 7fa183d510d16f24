"""The projector over the in-memory store (no engine): the same log gives the same rows whatever
its batching, the order of commuting events, and redeliveries.

The in-memory store passes the projection store contract suite
(``tests/contract/test_projection_store_contract.py``), so these rules hold on ClickHouse too;
the integration tests check a few of them there.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from processors.handlers import HeartbeatProjector
from projections.daily import compute_day
from projections.memory import InMemoryProjectionStore
from schemas.events import HeartbeatEvent
from tests.support.store_inspect import rows_of_user, snapshot
from tests.support.store_rows import (
    DAY,
    NEXT_DAY,
    beats,
    deleted,
    epoch,
    erasure_log,
    make_heartbeat,
    received,
    redeliveries,
)


def project(batches: list[list[HeartbeatEvent]]) -> InMemoryProjectionStore:
    store = InMemoryProjectionStore()
    projector = HeartbeatProjector(store, today=lambda: DAY)
    for batch in batches:
        projector.handle(batch)
    return store


def tables(store: InMemoryProjectionStore) -> dict[str, list[tuple[Any, ...]]]:
    return {table: snapshot(store, table) for table in store.table_names()}


# Two users, two local days, deletions of heartbeats received before and after them.
LOG: list[HeartbeatEvent] = [
    received("u1", beats("u1", "a", 10, 5), "r1"),
    received("u2", beats("u2", "b", 9, 4), "r2"),
    deleted(["a1", "a3", "n0"]),  # "n0" is of the next day: not deleted by this
    received("u1", beats("u1", "n", 11, 2, day=NEXT_DAY), "r3"),
    received("u1", beats("u1", "a", 10, 5)[2:], "r1-resent"),  # a client re-sending
    deleted(["b0"], user="u2"),
]


def test_projector_same_log_gives_same_rows_in_any_batching_and_on_redelivery() -> None:
    runs = redeliveries(LOG, cut=2)

    results = [tables(project(run)) for run in runs]

    assert all(result == results[0] for result in results[1:])
    store = project(runs[0])
    kept = [hb for hb in beats("u1", "a", 10, 5) if hb.event_id not in ("a1", "a3")]
    assert store.daily_rows("u1", DAY, NEXT_DAY) == [
        compute_day("u1", DAY, kept),
        compute_day("u1", NEXT_DAY, beats("u1", "n", 11, 2, day=NEXT_DAY)),
    ]


@pytest.mark.parametrize("seed", range(5))
def test_projector_rows_do_not_depend_on_the_order_of_commuting_events(seed: int) -> None:
    # Heartbeats and deletions commute (a tombstone hides its heartbeat whenever it arrives),
    # and late heartbeats are folded as if they had come in time.
    shuffled = random.Random(seed).sample(LOG, len(LOG))
    late = make_heartbeat("late", epoch(9, 30), user_id="u1")

    ordered = tables(project([LOG, [received("u1", [late], "r-late")]]))
    reordered = tables(project([[received("u1", [late], "r-late")], shuffled]))

    assert reordered == ordered


def test_projector_erasure_segments_give_the_same_rows_in_any_batching() -> None:
    runs = redeliveries(erasure_log(), cut=3)

    results = []
    for run in runs:
        store = project(run)
        results.append(tables(store))
        remaining = store.heartbeats_for_days([("u1", DAY)])[("u1", DAY)]
        # The range before the erasure is gone; what came after it stays.
        assert [hb.event_id for hb in remaining] == ["a0", "a1", "c", "a5"]
        assert sum(rows_of_user(store, "u3").values()) == 0
        assert [record.erasure_id for record in store.erasures_of(["u3"])["u3"]] == ["x2"]
    assert all(result == results[0] for result in results[1:])
