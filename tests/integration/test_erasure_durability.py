"""Erasures hold beyond the process that projected them, against the real engine (chdb in-process
and the chdb HTTP stand-in).

On Kafka the log keeps every record, so a new projector (a restarted worker, a partition moved to
another worker by a rebalance, a replay) reads again what came before an erasure, and a straggler
appended after an account's deletion. Each test erases, then "restarts" (a fresh projector on the
same tables), redelivers records from before and after the erasure, and replays; the tables must
end exactly as one uninterrupted run leaves them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from eventlog.port import Delivered
from processors.handlers import HeartbeatProjector
from projections.clickhouse import ClickHouseProjectionStore
from projections.erasures import LogPosition, erasure_record
from schemas.events import (
    ACCOUNTS_TOPIC,
    HEARTBEATS_TOPIC,
    AccountDeleted,
    UserDataErased,
    encode_event,
)
from schemas.heartbeat import Heartbeat
from tests.integration import test_clickhouse_store as store_tests
from tests.integration.test_erasure_projection import account
from tests.integration.test_heartbeat_deletions import fresh_store, tables
from tests.support.store_inspect import rows_of_user
from tests.support.store_rows import DAY, beats, epoch, erased, make_heartbeat, received

pytestmark = pytest.mark.clickhouse

chdb_url = store_tests.chdb_url
standin_url = store_tests.standin_url
store_url = store_tests.store_url
store = store_tests.store

Tables = dict[str, list[tuple[Any, ...]]]


def on_log(topic: str, events: Sequence[Any], *, first: int = 0) -> list[Delivered]:
    """The events as one partition of ``topic`` holds them, from offset ``first``."""
    return [
        Delivered(topic, 0, first + i, event.user_id.encode(), encode_event(event), 0)
        for i, event in enumerate(events)
    ]


def restarted(target: ClickHouseProjectionStore) -> HeartbeatProjector:
    """A projector as a new worker process builds it: nothing in memory, the same tables."""
    return HeartbeatProjector(target, today=lambda: DAY)


def one_run(url: str, records: Sequence[Delivered]) -> Tables:
    """The tables one uninterrupted run over ``records`` leaves (the reference)."""
    with fresh_store(url) as reference:
        restarted(reference).handle_records(records)
        return tables(reference)


def ids_of_day(target: ClickHouseProjectionStore, user: str) -> list[str]:
    return [hb.event_id for hb in target.heartbeats_for_days([(user, DAY)])[(user, DAY)]]


def test_deleted_account_stays_erased_after_restart_redelivery_and_replay(
    store: ClickHouseProjectionStore, store_url: str
) -> None:
    straggler = received("u1", beats("u1", "late", 11, 2), "r-late")
    heartbeats = on_log(
        HEARTBEATS_TOPIC,
        [
            received("u1", beats("u1", "a", 10, 4), "r1"),
            erased("u1", None, None, "x1"),
            # Authenticated just before the deletion, appended just after it.
            straggler,
            received("u2", beats("u2", "b", 10, 4), "r2"),
        ],
    )
    deletion = AccountDeleted(event_id="d1", user_id="u1", occurred_at=epoch(20))
    accounts = on_log(ACCOUNTS_TOPIC, [e for _, e in [*account("u1", 0), *account("u2", 2)]])
    accounts += on_log(ACCOUNTS_TOPIC, [deletion], first=len(accounts))
    expected = one_run(store_url, [*heartbeats, *accounts])
    assert expected["leaderboard_members"]  # u2 is there, so the comparisons below can fail
    assert expected["heartbeats"]

    # The worker projects up to the erasure and the deletion, then stops before the straggler.
    restarted(store).handle_records([*heartbeats[:2], *accounts])
    assert sum(rows_of_user(store, "u1").values()) == 0

    # Restarted, it reads on from its committed position: the straggler.
    restarted(store).handle_records(heartbeats[2:])
    assert sum(rows_of_user(store, "u1").values()) == 0
    assert tables(store) == expected

    # A rebalance (or a consumer group reset) delivers the account's history again, in pieces.
    restarted(store).handle_records([heartbeats[0], *accounts[:2]])
    restarted(store).handle_records(heartbeats[2:3])
    assert sum(rows_of_user(store, "u1").values()) == 0
    assert tables(store) == expected

    # A replay of the whole log, then one after retention removed the log's first segment
    # (the erasure event with it, the straggler still there).
    for retained in ([*heartbeats, *accounts], [*heartbeats[2:], *accounts]):
        store.truncate_projections()
        restarted(store).handle_records(retained)
        assert sum(rows_of_user(store, "u1").values()) == 0
        assert tables(store) == expected


def test_range_erasure_holds_after_restart_redelivery_and_replay(
    store: ClickHouseProjectionStore, store_url: str
) -> None:
    # a0..a5 at 10:00, 10:02 ... 10:10; the erasure takes [10:03, 10:07): a2 and a3.
    heartbeats = on_log(
        HEARTBEATS_TOPIC,
        [
            received("u1", beats("u1", "a", 10, 6), "r1"),
            erased("u1", epoch(10, 3), epoch(10, 7), "x1"),
            # Sent into the erased range after the erasure (an offline queue): kept.
            received("u1", [make_heartbeat("c", epoch(10, 5), user_id="u1")], "r2"),
            received("u1", [make_heartbeat("d", epoch(11), user_id="u1")], "r3"),
        ],
    )
    expected = one_run(store_url, heartbeats)
    kept = ["a0", "a1", "c", "a4", "a5", "d"]

    restarted(store).handle_records(heartbeats[:3])
    restarted(store).handle_records(heartbeats[3:])
    assert ids_of_day(store, "u1") == kept
    assert tables(store) == expected

    # The record before the erasure, delivered again to a new projector (a batch fetched before
    # a rebalance, a group reset): its erased heartbeats stay erased, the rest is unchanged.
    restarted(store).handle_records(heartbeats[:1])
    assert ids_of_day(store, "u1") == kept
    assert tables(store) == expected

    # The whole log again, then a replay.
    restarted(store).handle_records(heartbeats)
    assert tables(store) == expected
    store.truncate_projections()
    restarted(store).handle_records(heartbeats)
    assert ids_of_day(store, "u1") == kept
    assert tables(store) == expected


class _DeletedMidBatch(ClickHouseProjectionStore):
    """A store whose first heartbeat insert is followed, before the batch's other writes, by
    another worker projecting the account's deletion (its partition of the accounts topic)."""

    def __init__(self, url: str, database: str, deletion: Sequence[Delivered]) -> None:
        super().__init__(url, database)
        self._deletion = list(deletion)

    def insert_heartbeats(self, hbs: Sequence[Heartbeat]) -> None:
        super().insert_heartbeats(hbs)
        if self._deletion:
            deletion, self._deletion = self._deletion, []
            other = ClickHouseProjectionStore(self._url, self._database)
            try:
                restarted(other).handle_records(deletion)
            finally:
                other.close()


@pytest.fixture
def racing_store(store: ClickHouseProjectionStore, store_url: str) -> Iterator[_DeletedMidBatch]:
    deletion = AccountDeleted(event_id="d1", user_id="u1", occurred_at=epoch(20))
    racing = _DeletedMidBatch(store_url, store._database, on_log(ACCOUNTS_TOPIC, [deletion]))
    yield racing
    racing.close()


def test_straggler_written_while_another_worker_deletes_the_account_is_erased(
    racing_store: _DeletedMidBatch, store: ClickHouseProjectionStore
) -> None:
    restarted(store).handle_records(on_log(ACCOUNTS_TOPIC, [e for _, e in account("u2", 0)]))

    # This worker checked the ledger, inserts the straggler, the deletion lands, then this
    # worker recomputes the straggler's day and week.
    restarted(racing_store).handle_records(
        on_log(
            HEARTBEATS_TOPIC,
            [
                received("u1", beats("u1", "late", 11, 2), "r-late"),
                received("u2", beats("u2", "b", 10, 2), "r2"),
            ],
        )
    )

    assert sum(rows_of_user(store, "u1").values()) == 0
    assert ids_of_day(store, "u2") == ["b0", "b1"]
    assert store.daily_rows("u2", DAY, DAY)


def test_erasure_ledger_survives_truncation_and_keeps_the_position(
    store: ClickHouseProjectionStore,
) -> None:
    range_erasure = erased("u1", epoch(10), epoch(11), "x1")
    restarted(store).handle_records(on_log(HEARTBEATS_TOPIC, [range_erasure], first=7))
    store.truncate_projections()

    (record,) = store.erasures_of(["u1", "u2"])["u1"]

    assert (record.erasure_id, record.start, record.end) == ("x1", epoch(10), epoch(11))
    assert record.position == LogPosition(HEARTBEATS_TOPIC, 0, 7)
    assert "erasures" not in store.table_names()


def test_deletion_recorded_but_not_carried_out_is_carried_out_when_delivered_again(
    store: ClickHouseProjectionStore,
) -> None:
    accounts = on_log(ACCOUNTS_TOPIC, [e for _, e in account("u1", 0)])
    restarted(store).handle_records(
        [*accounts, *on_log(HEARTBEATS_TOPIC, [received("u1", beats("u1", "a", 10, 2), "r1")])]
    )
    deletion = AccountDeleted(event_id="d1", user_id="u1", occurred_at=epoch(20))
    # The worker recorded the deletion, then died before removing any row.
    store.record_erasure(
        erasure_record(
            UserDataErased(event_id="d1", user_id="u1", occurred_at=epoch(20)),
            LogPosition(ACCOUNTS_TOPIC, 0, 2),
        )
    )
    assert rows_of_user(store, "u1")["heartbeats"] == 2

    restarted(store).handle_records(on_log(ACCOUNTS_TOPIC, [deletion], first=2))

    assert sum(rows_of_user(store, "u1").values()) == 0
