"""Erasures (``UserDataErased``, ``AccountDeleted``) projected against the real engine: chdb
in-process and the chdb HTTP stand-in (the fixtures of
:mod:`tests.integration.test_clickhouse_store`).

An erasure removes the rows themselves, from every table, and what it removes is decided by the
log's order: heartbeats before it go, heartbeats after it stay (a range) or are never projected
(a deleted account). Projecting the same log in any batching, or redelivering a suffix of it,
gives the same tables.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from processors.handlers import HeartbeatProjector
from projections.clickhouse import ClickHouseProjectionStore
from projections.leaderboard import week_of
from schemas.events import (
    AccountCreated,
    AccountDeleted,
    ProfileUpdated,
)
from tests.integration import test_clickhouse_store as store_tests
from tests.integration.test_heartbeat_deletions import fresh_store, tables
from tests.support.store_inspect import rows_of_user
from tests.support.store_rows import (
    DAY,
    beats,
    deleted,
    epoch,
    erased,
    erasure_log,
    make_heartbeat,
    received,
    redeliveries,
)

pytestmark = pytest.mark.clickhouse

chdb_url = store_tests.chdb_url
standin_url = store_tests.standin_url
store_url = store_tests.store_url
store = store_tests.store

NEXT_DAY = DAY + timedelta(days=1)
TABLES = {
    "heartbeats",
    "daily_stats",
    "weekly_stats",
    "heartbeat_deletions",
    "account_events",
    "leaderboard_members",
    "day_folds",
}


def account(user: str, offset: int) -> list[tuple[int, Any]]:
    return [
        (
            offset,
            AccountCreated(event_id=f"c-{user}", user_id=user, occurred_at=epoch(1), username=user),
        ),
        (
            offset + 1,
            ProfileUpdated(
                event_id=f"p-{user}",
                user_id=user,
                occurred_at=epoch(2),
                is_public=True,
                show_in_leaderboard=True,
            ),
        ),
    ]


def test_store_rows_of_user_lists_every_projection_table(store: ClickHouseProjectionStore) -> None:
    assert set(rows_of_user(store, "nobody")) == set(store.table_names()) >= TABLES


def test_full_erasure_removes_every_row_of_the_user_and_only_theirs(
    store: ClickHouseProjectionStore,
) -> None:
    projector = HeartbeatProjector(store, today=lambda: DAY)
    projector.handle_accounts([*account("u1", 0), *account("u2", 2)])
    projector.handle(
        [
            received("u1", beats("u1", "a", 10, 5), "r1"),
            received("u2", beats("u2", "b", 10, 5), "r2"),
            deleted(["a0"], user="u1"),
        ]
    )
    before = rows_of_user(store, "u1")
    assert all(before[table] > 0 for table in TABLES), before  # the check below can fail
    others = rows_of_user(store, "u2")

    result = projector.handle([erased("u1", None, None, "x1")])

    assert result.erasures == (erased("u1", None, None, "x1"),)
    assert rows_of_user(store, "u1") == dict.fromkeys(store.table_names(), 0)
    assert rows_of_user(store, "u2") == others
    # Whatever else of the user is read afterwards (a request in flight) is not projected.
    projector.handle([received("u1", beats("u1", "late", 11, 2), "r3")])
    projector.handle_accounts(account("u1", 10))
    assert sum(rows_of_user(store, "u1").values()) == 0


def test_account_deleted_on_the_accounts_topic_erases_too(
    store: ClickHouseProjectionStore,
) -> None:
    projector = HeartbeatProjector(store, today=lambda: DAY)
    projector.handle_accounts(account("u1", 0))
    projector.handle([received("u1", beats("u1", "a", 10, 3), "r1")])
    assert store.leaderboard(week_of(DAY))[0] == 1

    deletion = AccountDeleted(event_id="d1", user_id="u1", occurred_at=epoch(21))
    written = projector.handle_accounts([(5, deletion)])

    assert written == 0
    assert sum(rows_of_user(store, "u1").values()) == 0
    assert store.leaderboard(week_of(DAY)) == (0, [])
    # The heartbeats behind it on their own topic (read later) are dropped.
    projector.handle([received("u1", beats("u1", "b", 11, 3), "r2")])
    assert sum(rows_of_user(store, "u1").values()) == 0


def test_range_erasure_removes_the_range_before_it_and_keeps_what_comes_after(
    store: ClickHouseProjectionStore,
) -> None:
    projector = HeartbeatProjector(store, today=lambda: DAY)
    kept_day = beats("u1", "k", 10, 4, day=NEXT_DAY)
    projector.handle(
        [
            received("u1", beats("u1", "a", 10, 4), "r1"),
            received("u1", kept_day, "r2"),
            received("u2", beats("u2", "o", 10, 4), "r3"),
        ]
    )
    other_user = tables(store)["daily_stats"][1:]

    # Erase DAY 10:00-10:03 of u1 (a0, a1), then a heartbeat of that range arrives afterwards.
    late = make_heartbeat("late", epoch(10, 1), user_id="u1")
    projector.handle([erased("u1", epoch(10), epoch(10, 3), "x1"), received("u1", [late], "r4")])

    day = store.heartbeats_for_days([("u1", DAY)])[("u1", DAY)]
    assert [hb.event_id for hb in day] == ["late", "a2", "a3"]
    assert [
        hb.event_id for hb in store.heartbeats_for_days([("u1", NEXT_DAY)])[("u1", NEXT_DAY)]
    ] == [
        "k0",
        "k1",
        "k2",
        "k3",
    ]
    (row,) = store.daily_rows("u1", DAY, DAY)
    assert row.heartbeat_count == 3
    assert tables(store)["daily_stats"][1:] == other_user


def test_erasures_give_the_same_tables_in_any_batching_and_on_redelivery(
    store_url: str,
) -> None:
    # A crash before the commit: the suffix after the first erasure is delivered again.
    runs = redeliveries(erasure_log(), cut=3)
    results = []
    for batches in runs:
        with fresh_store(store_url) as target:
            projector = HeartbeatProjector(target, today=lambda: DAY)
            for batch in batches:
                projector.handle(batch)
            results.append(tables(target))
            remaining = target.heartbeats_for_days([("u1", DAY)])[("u1", DAY)]
            assert [hb.event_id for hb in remaining] == ["a0", "a1", "c", "a5"]
            assert sum(rows_of_user(target, "u3").values()) == 0
    assert all(result == results[0] for result in results[1:])
