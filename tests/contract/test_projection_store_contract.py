"""The projection store contract: every adapter of :mod:`projections.ports` reads back the same
thing after the same writes. Run against ClickHouse three ways (chdb in-process, the chdb HTTP
stand-in, a server when ``CODETRACKR_TEST_CLICKHOUSE_URL`` names one) and against the in-memory
store, which is trusted in projector tests only because it passes this suite.

ClickHouse's own behaviour (migrations, snapshots of unmerged tables, URLs, connection errors)
is tested in ``tests/integration/test_clickhouse_store.py``.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest

from projections.ai import AI_EXPORT_COLUMNS
from projections.daily import compute_day
from projections.dayfold import fold_day, row_of_fold
from projections.erasures import ErasureRecord, LogPosition
from projections.leaderboard import Member, WeeklyRow
from projections.ports import ProjectionStore, ProjectionStoreError, SeenValue, UserTotals
from schemas.ai import (
    AiRecord,
    file_activity_record,
    message_record,
    project_id_of,
    session_end_record,
    session_start_record,
    tool_call_record,
)
from schemas.heartbeat import Heartbeat
from tests.contract.conftest import OpenStore
from tests.support.store_inspect import count_heartbeats, rows_of_user, snapshot
from tests.support.store_rows import (
    DAY,
    NEXT_DAY,
    daily_row,
    deleted,
    epoch,
    full_heartbeat,
    make_heartbeat,
)

MONDAY = date(2024, 3, 25)  # DAY's week


# --- the raw archive ---------------------------------------------------------------------------


def test_insert_heartbeats_round_trips_every_field(store: ProjectionStore) -> None:
    original = full_heartbeat()
    store.insert_heartbeats([original])

    found = store.heartbeats_for_days([("u1", DAY)])

    assert found == {("u1", DAY): [original]}


def test_insert_heartbeats_duplicates_collapse_to_one_row(store: ProjectionStore) -> None:
    beats = [make_heartbeat(f"e{i}", epoch(10, i)) for i in range(5)]
    store.insert_heartbeats(beats + beats[:2])  # duplicates within a batch
    store.insert_heartbeats(beats)  # and redelivery of the whole batch

    assert count_heartbeats(store, "u1") == 5
    assert len(snapshot(store, "heartbeats")) == 5


def test_insert_heartbeats_copy_received_last_wins(store: ProjectionStore) -> None:
    early = make_heartbeat("same", epoch(10), duration=10.0, received_at=epoch(11))
    late = make_heartbeat("same", epoch(10), duration=20.0, received_at=epoch(12))
    store.insert_heartbeats([late])
    store.insert_heartbeats([early])

    assert store.heartbeats_for_days([("u1", DAY)])[("u1", DAY)] == [late]


def test_insert_heartbeats_out_of_range_counter_is_stored_as_null(
    store: ProjectionStore,
) -> None:
    store.insert_heartbeats([make_heartbeat("big", epoch(10), lines=2**70, lineno=5)])

    (stored,) = store.heartbeats_for_days([("u1", DAY)])[("u1", DAY)]

    assert (stored.lines, stored.lineno) == (None, 5)


def test_heartbeats_for_days_returns_deduplicated_heartbeats_per_key(
    store: ProjectionStore,
) -> None:
    # 20:00 UTC on Mar 30 is Mar 31 in Kolkata (UTC+5:30): the heartbeat's own zone decides.
    kolkata = make_heartbeat("k", epoch(20), timezone="Asia/Kolkata")
    a1 = make_heartbeat("a1", epoch(9))
    a2 = make_heartbeat("a2", epoch(8))
    other_user = make_heartbeat("b1", epoch(9), user_id="o'brien ✓")
    store.insert_heartbeats([a1, a2, kolkata, other_user])
    store.insert_heartbeats([a1, kolkata])

    found = store.heartbeats_for_days(
        [("u1", DAY), ("u1", date(2024, 3, 31)), ("o'brien ✓", DAY), ("u3", DAY), ("u1", DAY)]
    )

    assert found == {
        ("u1", DAY): [a2, a1],  # ordered by time
        ("u1", date(2024, 3, 31)): [kolkata],
        ("o'brien ✓", DAY): [other_user],
        ("u3", DAY): [],
    }


def test_heartbeats_for_days_without_keys_is_empty(store: ProjectionStore) -> None:
    assert store.heartbeats_for_days([]) == {}


def test_last_heartbeat_by_project_uses_half_open_range(store: ProjectionStore) -> None:
    store.insert_heartbeats(
        [
            make_heartbeat("a", epoch(9), project="api"),
            make_heartbeat("b", epoch(11), project="api"),
            make_heartbeat("c", epoch(10), project=None),
            make_heartbeat("d", epoch(12), project="web"),  # exactly at the end: excluded
            make_heartbeat("e", epoch(11), project="other", user_id="u2"),
        ]
    )

    latest = store.last_heartbeat_by_project("u1", epoch(9), epoch(12))

    assert latest == {"api": epoch(11), "": epoch(10)}


# --- daily stats -------------------------------------------------------------------------------


def test_upsert_daily_newer_row_wins_and_vanished_values_are_gone(
    store: ProjectionStore,
) -> None:
    store.upsert_daily([daily_row(total=300.0, projects={"a": 100.0, "b": 200.0})])
    replacement = daily_row(total=50.0, projects={"a": 50.0})
    store.upsert_daily([replacement])

    assert store.daily_rows("u1", DAY, DAY) == [replacement]
    assert len(snapshot(store, "daily_stats")) == 1


def test_upsert_daily_last_row_for_a_day_in_one_batch_wins(
    store: ProjectionStore,
) -> None:
    final = daily_row(total=2.0)
    store.upsert_daily([daily_row(total=1.0), final])

    assert store.daily_rows("u1", DAY, DAY) == [final]


def test_daily_rows_range_is_inclusive_and_ordered(store: ProjectionStore) -> None:
    days = [date(2024, 3, d) for d in (28, 29, 30, 31)]
    rows = [daily_row(day) for day in days]
    store.upsert_daily(list(reversed(rows)))

    assert store.daily_rows("u1", days[1], days[2]) == rows[1:3]
    assert store.daily_rows("u2", days[0], days[3]) == []


def test_active_dates_skips_days_recomputed_to_zero(store: ProjectionStore) -> None:
    store.upsert_daily([daily_row(date(2024, 3, 29)), daily_row(DAY), daily_row(date(2024, 3, 31))])
    store.upsert_daily([daily_row(DAY, total=0.0, projects={})])

    assert store.active_dates("u1") == [date(2024, 3, 29), date(2024, 3, 31)]


def test_store_feeds_compute_day_from_the_archive(store: ProjectionStore) -> None:
    beats = [make_heartbeat(f"e{i}", epoch(10, 2 * i)) for i in range(5)]
    store.insert_heartbeats(beats + beats)
    day_beats = store.heartbeats_for_days([("u1", DAY)])[("u1", DAY)]
    row = compute_day("u1", DAY, day_beats)
    store.upsert_daily([row])

    assert store.daily_rows("u1", DAY, DAY) == [row]
    assert row.total_seconds == 480
    assert row.heartbeat_count == 5


# --- operations and errors ---------------------------------------------------------------------


def test_truncate_projections_empties_tables_and_keeps_migrations(
    store: ProjectionStore,
) -> None:
    store.insert_heartbeats([make_heartbeat("e", epoch(10))])
    store.upsert_daily([daily_row()])

    store.truncate_projections()

    assert all(snapshot(store, table) == [] for table in store.table_names())
    assert store.migrate() == []
    store.insert_heartbeats([make_heartbeat("e", epoch(10))])
    assert count_heartbeats(store, "u1") == 1


def test_store_threads_each_use_their_own_client(store: ProjectionStore) -> None:
    batches = [
        [make_heartbeat(f"t{thread}-{i}", epoch(10) + thread * 100 + i) for i in range(50)]
        for thread in range(4)
    ]

    def work(batch: list[Heartbeat]) -> int:
        store.insert_heartbeats(batch)
        return len(store.heartbeats_for_days([("u1", DAY)])[("u1", DAY)])

    with ThreadPoolExecutor(max_workers=4) as pool:
        seen = list(pool.map(work, batches))

    assert count_heartbeats(store, "u1") == 200
    assert all(count >= 50 for count in seen)  # each thread reads its own writes


def test_store_closed_store_refuses_calls(open_store: OpenStore) -> None:
    closed = open_store()
    closed.close()

    with pytest.raises(ProjectionStoreError, match="closed"):
        closed.migrate()


# --- tombstones --------------------------------------------------------------------------------


def test_deleted_heartbeats_are_left_out_of_every_archive_reader(
    store: ProjectionStore,
) -> None:
    mine = [make_heartbeat(f"e{i}", epoch(10, i), project=f"p{i}") for i in range(4)]
    # Another user's heartbeat under the same id (ids are per user in practice; a guessed or
    # colliding id must still never reach it).
    theirs = make_heartbeat("e1", epoch(10, 1), user_id="u2")
    store.insert_heartbeats([*mine, theirs])

    store.delete_heartbeats([deleted(["e1", "e3", "unknown"])])

    assert [hb.event_id for hb in store.heartbeats_for_days([("u1", DAY)])[("u1", DAY)]] == [
        "e0",
        "e2",
    ]
    beats = store.beats_for_days([("u1", DAY), ("u2", DAY)])
    assert [b.event_id for b in beats[("u1", DAY)]] == ["e0", "e2"]
    assert [b.event_id for b in beats[("u2", DAY)]] == ["e1"]
    assert count_heartbeats(store, "u1") == 2
    assert count_heartbeats(store, "u2") == 1
    latest = store.last_heartbeat_by_project("u1", epoch(9), epoch(11))
    assert latest == {"p0": epoch(10, 0), "p2": epoch(10, 2)}


def test_deletion_is_scoped_to_its_local_date(store: ProjectionStore) -> None:
    store.insert_heartbeats([make_heartbeat("e", epoch(10))])

    store.delete_heartbeats([deleted(["e"], day=NEXT_DAY)])

    assert count_heartbeats(store, "u1") == 1
    store.delete_heartbeats([deleted(["e"], day=DAY)])
    assert count_heartbeats(store, "u1") == 0


def test_deleted_heartbeat_stays_deleted_when_inserted_again(
    store: ProjectionStore,
) -> None:
    beat = make_heartbeat("e", epoch(10))
    store.delete_heartbeats([deleted(["e"])])  # a tombstone may even come first
    store.insert_heartbeats([beat])
    store.delete_heartbeats([deleted(["e"], at=epoch(21))])  # and twice
    store.insert_heartbeats([beat.model_copy(update={"received_at": epoch(23)})])

    assert store.heartbeats_for_days([("u1", DAY)]) == {("u1", DAY): []}
    (tombstone,) = snapshot(store, "heartbeat_deletions")
    assert tombstone[:3] == ("u1", DAY, "e")


# --- reads of the archive ----------------------------------------------------------------------


def test_beats_between_is_half_open_ordered_and_leaves_out_deletions(
    store: ProjectionStore,
) -> None:
    store.insert_heartbeats(
        [
            make_heartbeat("b", epoch(11)),
            make_heartbeat("a", epoch(9)),
            make_heartbeat("z", epoch(10)),
            make_heartbeat("y", epoch(10)),  # same time: ordered by id
            make_heartbeat("gone", epoch(10, 30)),
            make_heartbeat("end", epoch(12)),  # exactly at the end: excluded
            make_heartbeat("other", epoch(10), user_id="u2"),
        ]
    )
    store.delete_heartbeats([deleted(["gone"])])

    beats = store.beats_between("u1", epoch(9), epoch(12))

    assert [beat.event_id for beat in beats] == ["a", "y", "z", "b"]
    assert [beat.time for beat in beats] == [epoch(9), epoch(10), epoch(10), epoch(11)]


def test_seen_values_lists_each_value_most_recent_first(store: ProjectionStore) -> None:
    store.insert_heartbeats(
        [
            make_heartbeat("1", epoch(9), user_agent="vim/1", editor="vim", os="Linux"),
            make_heartbeat("2", epoch(11), user_agent="vim/1", editor="vim", os="Mac"),
            make_heartbeat("3", epoch(10), user_agent="code/2", editor="vscode", os="Linux"),
            make_heartbeat("4", epoch(12), user_agent="", editor="x"),  # empty: not listed
            make_heartbeat("5", epoch(13), user_agent="gone/1"),
            make_heartbeat("6", epoch(14), user_agent="emacs", user_id="u2"),
        ]
    )
    store.delete_heartbeats([deleted(["5"])])

    seen = store.seen_values("u1", "user_agent")

    assert seen == [
        SeenValue("vim/1", epoch(9), epoch(11), 2, "vim", "Mac"),
        SeenValue("code/2", epoch(10), epoch(10), 1, "vscode", "Linux"),
    ]
    with pytest.raises(ProjectionStoreError):
        store.seen_values("u1", "entity")  # type: ignore[arg-type]


# --- daily rows across users and weeks -----------------------------------------------------------


def test_totals_by_user_sums_days_with_time_in_the_range(store: ProjectionStore) -> None:
    store.upsert_daily(
        [
            daily_row(DAY, total=100.0),
            daily_row(NEXT_DAY, total=50.0),
            daily_row(DAY - timedelta(days=1), total=0.0, projects={}),  # no time: not counted
            daily_row(DAY + timedelta(days=5), total=7.0),  # outside the range
        ]
    )

    totals = store.totals_by_user(DAY - timedelta(days=1), NEXT_DAY)

    assert totals == [UserTotals("u1", 150.0, 2, {"Python": 150.0})]


def test_totals_by_user_keeps_a_language_summed_to_zero(store: ProjectionStore) -> None:
    row = daily_row(DAY, total=10.0)
    languages = {**row.breakdown, "language": {"Python": 10.0, "Go": 0.0}}
    store.upsert_daily([dataclasses.replace(row, breakdown=languages)])

    (totals,) = store.totals_by_user(DAY, DAY)

    assert totals.languages == {"Python": 10.0, "Go": 0.0}


def test_daily_rows_for_weeks_groups_days_by_monday(store: ProjectionStore) -> None:
    days = [MONDAY - timedelta(days=1), MONDAY, DAY, MONDAY + timedelta(days=7)]
    rows = [daily_row(day) for day in days]
    store.upsert_daily(rows)

    found = store.daily_rows_for_weeks([("u1", MONDAY), ("u2", MONDAY), ("u1", MONDAY)])

    assert found == {("u1", MONDAY): rows[1:3], ("u2", MONDAY): []}


def test_days_with_rows_counts_zero_rows_and_drop_days_removes_them(
    store: ProjectionStore,
) -> None:
    store.upsert_daily([daily_row(DAY), daily_row(NEXT_DAY, total=0.0, projects={})])

    assert store.days_with_rows("u1", DAY, NEXT_DAY) == {DAY, NEXT_DAY}
    store.drop_days("u1", [NEXT_DAY, NEXT_DAY])
    assert store.days_with_rows("u1", DAY - timedelta(days=3), NEXT_DAY) == {DAY}
    assert store.days_with_rows("u2", DAY, NEXT_DAY) == set()


# --- day folds ----------------------------------------------------------------------------------


def test_day_folds_round_trip_exactly_and_the_newest_wins(store: ProjectionStore) -> None:
    beats = [
        make_heartbeat(f"f{i}", epoch(10, 7 * i) + 0.001 * i, duration=0.1 * i, project=f"p{i % 3}")
        for i in range(6)
    ]
    older = fold_day("u1", DAY, beats[:3], timeout_s=900.0)
    newer = fold_day("u1", DAY, beats, timeout_s=900.0)
    other = fold_day("u2", NEXT_DAY, [], timeout_s=900.0)
    store.upsert_day_folds([older, other])
    store.upsert_day_folds([newer])

    found = store.day_folds([("u1", DAY), ("u2", NEXT_DAY), ("u1", NEXT_DAY), ("u1", DAY)])

    assert found == {("u1", DAY): newer, ("u2", NEXT_DAY): other}
    assert row_of_fold(found[("u1", DAY)]) == compute_day("u1", DAY, beats)


def test_forgotten_and_dropped_day_folds_read_as_none(store: ProjectionStore) -> None:
    folds = [fold_day("u1", day, [], timeout_s=900.0) for day in (DAY, NEXT_DAY)]
    later = fold_day("u1", NEXT_DAY + timedelta(days=5), [], timeout_s=900.0)
    store.upsert_day_folds([*folds, later])

    store.forget_day_folds([("u1", DAY)])
    assert set(store.day_folds([("u1", DAY), ("u1", NEXT_DAY)])) == {("u1", NEXT_DAY)}
    store.upsert_day_folds(folds[:1])  # written again after being forgotten
    assert set(store.day_folds([("u1", DAY)])) == {("u1", DAY)}

    store.drop_day_folds("u1", DAY, NEXT_DAY + timedelta(days=1))
    store.drop_day_folds("u2", DAY, later.date)  # another user's range: nothing of u1's
    assert store.day_folds([("u1", DAY), ("u1", NEXT_DAY), ("u1", later.date)]) == {
        ("u1", later.date): later
    }


def test_deleted_ids_names_only_matching_tombstones(store: ProjectionStore) -> None:
    store.delete_heartbeats([deleted(["a", "b"]), deleted(["c"], user="u2")])

    asked = [("u1", DAY, "a"), ("u1", NEXT_DAY, "b"), ("u2", DAY, "a"), ("u2", DAY, "c")]
    assert store.deleted_ids(asked) == {("u1", DAY, "a"), ("u2", DAY, "c")}
    assert store.deleted_ids([]) == set()


# --- weekly boards -------------------------------------------------------------------------------


def week_row(user: str, seconds: float, languages: dict[str, float]) -> WeeklyRow:
    breakdown = {"language": languages, "editor": {"vim": seconds}, "os": {"Linux": seconds}}
    return WeeklyRow(user, MONDAY, seconds, breakdown)


def member(
    user: str, name: str, *, eligible: bool = True, country: str = "", **flags: bool
) -> Member:
    return Member(
        user,
        name,
        eligible,
        country,
        flags.get("hire", False),
        flags.get("version", 1),
        flags.get("languages", True),
    )


@pytest.fixture
def board(store: ProjectionStore) -> ProjectionStore:
    store.upsert_weekly(
        [
            week_row("u1", 300.0, {"Python": 200.0, "Go": 100.0}),
            week_row("u2", 300.0, {"python": 50.0, "Rust": 250.0}),
            week_row("u3", 500.0, {"Go": 500.0}),
            week_row("u4", 900.0, {"Python": 900.0}),  # not eligible
            week_row("u5", 0.0, {}),  # no time
            week_row("u6", 100.0, {"Python": 100.0}),  # no member row
        ]
    )
    store.upsert_members(
        [
            member("u1", "bea", country="DE", hire=True),
            member("u2", "ada", country="FR", languages=False),
            member("u3", "cyd", country="DE"),
            member("u4", "dan", eligible=False),
            member("u5", "eve"),
        ]
    )
    return store


def test_leaderboard_ranks_eligible_members_with_time_then_username(
    board: ProjectionStore,
) -> None:
    total, entries = board.leaderboard(MONDAY)

    assert total == 3
    assert [(e.rank, e.user_id, e.seconds) for e in entries] == [
        (1, "u3", 500.0),
        (2, "u2", 300.0),  # ties ranked by username: ada before bea
        (3, "u1", 300.0),
    ]
    first = entries[0]
    assert (first.username, first.country, first.languages_public) == ("cyd", "DE", True)
    assert first.breakdown == {
        "language": {"Go": 500.0},
        "editor": {"vim": 500.0},
        "os": {"Linux": 500.0},
    }
    assert board.leaderboard(MONDAY, limit=1, offset=1) == (3, [entries[1]])
    assert board.leaderboard(MONDAY + timedelta(days=7)) == (0, [])


def test_leaderboard_filters_language_country_and_hire(board: ProjectionStore) -> None:
    # Case-insensitive; only members whose profile shows languages (not u2).
    _, python = board.leaderboard(MONDAY, language="PYTHON")
    assert [(e.user_id, e.seconds) for e in python] == [("u1", 200.0)]
    _, german = board.leaderboard(MONDAY, country="DE")
    assert [e.user_id for e in german] == ["u3", "u1"]
    _, hiring = board.leaderboard(MONDAY, available_for_hire=True)
    assert [e.user_id for e in hiring] == ["u1"]
    _, not_hiring = board.leaderboard(MONDAY, available_for_hire=False)
    assert [e.user_id for e in not_hiring] == ["u3", "u2"]


def test_leaderboard_positions_rank_on_the_whole_board(board: ProjectionStore) -> None:
    positions = board.leaderboard_positions(MONDAY, ["u1", "u4", "u9", "u1"])

    assert {user: entry.rank for user, entry in positions.items()} == {"u1": 3}
    found = board.leaderboard_position(MONDAY, "u1", country="DE")
    assert found is not None
    assert found.rank == 2
    assert board.leaderboard_position(MONDAY, "u4") is None


def test_members_keep_the_newest_version_whatever_the_order(store: ProjectionStore) -> None:
    newer = member("u1", "new-name", version=9)
    store.upsert_members([newer])
    store.upsert_members([member("u1", "old-name", version=3)])  # redelivered late

    assert store.leaderboard_member("u1") == newer
    assert store.leaderboard_member("u2") is None


def test_weekly_rows_are_replaced_whole(store: ProjectionStore) -> None:
    store.upsert_weekly([week_row("u1", 300.0, {"Python": 200.0, "Go": 100.0})])
    replacement = week_row("u1", 50.0, {"Go": 50.0})
    store.upsert_weekly([replacement])

    assert store.weekly_rows_of("u1") == [replacement]
    assert store.weekly_rows_of("u2") == []


def test_account_events_are_kept_once_per_offset_in_log_order(store: ProjectionStore) -> None:
    store.insert_account_events([("u1", 7, '{"b": 1}'), ("u1", 3, '{"a": 1}'), ("u2", 5, "{}")])
    store.insert_account_events([("u1", 7, '{"b": 1}')])

    assert store.account_events_of(["u1", "u3"]) == {
        "u1": [(3, '{"a": 1}'), (7, '{"b": 1}')],
        "u3": [],
    }


# --- exports -----------------------------------------------------------------------------------


def test_stream_heartbeats_exports_every_live_heartbeat_in_time_order(
    store: ProjectionStore,
) -> None:
    full = full_heartbeat()
    later = make_heartbeat("later", epoch(22), timezone="Asia/Tokyo")  # Mar 31 in Tokyo
    store.insert_heartbeats([later, full, make_heartbeat("gone", epoch(12))])
    store.delete_heartbeats([deleted(["gone"])])

    blocks = list(store.stream_heartbeats("u1", block_rows=1))

    assert [len(block) for block in blocks] == [1, 1]
    first, second = blocks[0][0], blocks[1][0]
    assert first == {
        **full.model_dump(exclude={"schema_version", "user_id"}),
        "dependencies": ["fastapi", "pydantic"],
        "local_date": DAY,
    }
    assert (second["event_id"], second["local_date"]) == ("later", NEXT_DAY)
    assert list(store.stream_heartbeats("u2")) == []


def test_stream_deletions_lists_tombstones_by_date_and_id(store: ProjectionStore) -> None:
    store.delete_heartbeats([deleted(["b", "a"], day=NEXT_DAY), deleted(["c"], at=epoch(21))])

    rows = [row for block in store.stream_deletions("u1", block_rows=2) for row in block]

    assert rows == [(DAY, "c", epoch(21)), (NEXT_DAY, "a", epoch(20)), (NEXT_DAY, "b", epoch(20))]


# --- erasure -----------------------------------------------------------------------------------


def test_erase_heartbeats_removes_the_range_and_names_its_local_days(
    store: ProjectionStore,
) -> None:
    kolkata = make_heartbeat("k", epoch(20), timezone="Asia/Kolkata")  # Mar 31 there
    store.insert_heartbeats(
        [make_heartbeat("a", epoch(9)), make_heartbeat("b", epoch(12)), kolkata]
    )
    store.delete_heartbeats([deleted(["b"])])

    assert store.erase_heartbeats("u1", epoch(10), None) == {DAY, NEXT_DAY}
    assert [hb.event_id for hb in store.heartbeats_for_days([("u1", DAY)])[("u1", DAY)]] == ["a"]
    assert store.erase_heartbeats("u1", None, epoch(9)) == set()  # the end is excluded
    assert store.erase_heartbeats("u1", None, None) == {DAY}
    assert count_heartbeats(store, "u1") == 0
    assert [row[1] for block in store.stream_deletions("u1") for row in block] == ["b"]


def erasure(user: str, erasure_id: str, offset: int | None = None) -> ErasureRecord:
    position = None if offset is None else LogPosition("codetrackr.heartbeats", 0, offset)
    return ErasureRecord(user, erasure_id, None, None, position, epoch(18) + 0.25)


def test_erasures_of_lists_each_users_records_as_projected(store: ProjectionStore) -> None:
    ranged = ErasureRecord("u1", "x1", epoch(9), epoch(10), None, epoch(18))
    store.record_erasure(erasure("u1", "x2", offset=41))
    store.record_erasure(ranged)
    store.record_erasure(erasure("u2", "y1"))
    store.record_erasure(erasure("u1", "x2", offset=41))  # redelivered: replaces the same row

    found = store.erasures_of(["u1", "u3"])

    assert set(found) == {"u1"}
    assert sorted(found["u1"], key=lambda record: record.erasure_id) == [
        ranged,
        erasure("u1", "x2", offset=41),
    ]


def test_erase_user_removes_every_projection_row_but_keeps_the_ledger(
    store: ProjectionStore,
) -> None:
    for user in ("u1", "u2"):
        store.insert_heartbeats([make_heartbeat(f"{user}-e", epoch(10), user_id=user)])
        store.delete_heartbeats([deleted([f"{user}-d"], user=user)])
        store.upsert_weekly([week_row(user, 10.0, {"Go": 10.0})])
        store.upsert_members([member(user, f"name-{user}")])
        store.insert_account_events([(user, 1, "{}")])
    store.upsert_daily([daily_row()])
    store.record_erasure(erasure("u1", "all"))
    kept = rows_of_user(store, "u2")

    store.erase_user("u1")

    assert rows_of_user(store, "u1") == dict.fromkeys(store.table_names(), 0)
    assert rows_of_user(store, "u2") == kept
    assert store.erasures_of(["u1"]) == {"u1": [erasure("u1", "all")]}
    store.truncate_projections()
    assert store.erasures_of(["u1"]) == {"u1": [erasure("u1", "all")]}  # a replay keeps it


def test_drop_weeks_removes_only_those_weeks(store: ProjectionStore) -> None:
    later = WeeklyRow("u1", MONDAY + timedelta(days=7), 5.0, week_row("u1", 5.0, {}).breakdown)
    store.upsert_weekly([week_row("u1", 10.0, {"Go": 10.0}), later])

    store.drop_weeks("u1", [MONDAY])

    assert store.weekly_rows_of("u1") == [later]


# --- AI coding activity ------------------------------------------------------------------------


def _ai_records(user: str) -> list[AiRecord]:
    start = session_start_record(user, "s1", "/p/tracker", epoch(10), client_user="ada")
    return [
        start,
        message_record(user, "s1", "user", "hello", epoch(10, 1), project_path="/p/tracker"),
        file_activity_record(user, "s1", "/p/tracker/a.py", "created", epoch(10, 2), lines_added=4),
        tool_call_record(user, "Read", epoch(10, 3), session_id="s1", execution_time_ms=12.5),
        session_end_record(user, "s1", epoch(10, 30)),
    ]


def _ai_rows(store: ProjectionStore, user: str) -> dict[str, list[dict[str, object]]]:
    return {
        table: [row for block in store.stream_ai_rows(user, table) for row in block]
        for table in AI_EXPORT_COLUMNS
    }


def test_ai_records_read_back_as_rows_and_duplicates_collapse(store: ProjectionStore) -> None:
    records = _ai_records("u1")
    store.insert_ai_records("u1", records)
    store.insert_ai_records("u1", records[1:3])  # redelivered

    rows = _ai_rows(store, "u1")

    start, message = records[:2]
    tracker = project_id_of("u1", "/p/tracker")
    assert rows["ai_projects"] == [
        {
            "record_id": start.id,
            "project_id": tracker,
            "path": "/p/tracker",
            "name": "tracker",
            "time": epoch(10),
        }
    ]
    assert [(r["kind"], r["time"], r["project_id"]) for r in rows["ai_sessions"]] == [
        ("start", epoch(10), tracker),
        ("end", epoch(10, 30), None),
    ]
    assert rows["ai_messages"] == [
        {
            "message_id": message.id,
            "session_id": "s1",
            "role": "user",
            "content": "hello",
            "project_id": tracker,
            "project_path": "/p/tracker",
            "time": epoch(10, 1),
        }
    ]
    assert [(r["file_path"], r["lines_added"]) for r in rows["ai_activities"]] == [
        ("/p/tracker/a.py", 4)
    ]
    assert [
        (r["tool_name"], r["execution_time_ms"], r["project_id"]) for r in rows["ai_tool_calls"]
    ] == [("Read", 12.5, None)]
    assert all(list(row) == list(AI_EXPORT_COLUMNS[table]) for table in rows for row in rows[table])


def test_erase_ai_removes_one_users_records_of_a_range(store: ProjectionStore) -> None:
    store.insert_ai_records("u1", _ai_records("u1"))
    store.insert_ai_records("u2", _ai_records("u2"))
    kept = _ai_rows(store, "u2")

    store.erase_ai("u1", epoch(10, 1), epoch(10, 30))

    left = _ai_rows(store, "u1")
    assert [r["kind"] for r in left["ai_sessions"]] == ["start", "end"]  # at 10:00 and 10:30
    assert left["ai_messages"] == left["ai_activities"] == left["ai_tool_calls"] == []
    assert _ai_rows(store, "u2") == kept
    store.erase_ai("u1", None, None)
    assert all(rows == [] for rows in _ai_rows(store, "u1").values())
