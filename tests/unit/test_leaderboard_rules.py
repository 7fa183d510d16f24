"""Weekly leaderboard rules: ISO weeks, weekly sums, and members folded from account events."""

from __future__ import annotations

from datetime import date

import pytest

from live.port import PUBLIC_LEADERBOARD, user_channel
from processors.projectors.boards import Audience, audience_of, board_channels
from processors.projectors.live import rank_changes, top_update
from processors.projectors.members import member_of
from projections.daily import DailyRow
from projections.durations import DIMENSIONS
from projections.leaderboard import iso_week_id, week_of, week_start_of_id, weekly_row
from projections.ports import LeaderboardEntry
from schemas.events import AccountCreated, ProfileUpdated, encode_event


@pytest.mark.parametrize(
    ("day", "monday", "week_id"),
    [
        (date(2026, 3, 8), date(2026, 3, 2), "2026-W10"),  # a Sunday
        (date(2026, 3, 9), date(2026, 3, 9), "2026-W11"),  # the Monday after
        (date(2026, 12, 31), date(2026, 12, 28), "2026-W53"),  # 2026 has 53 ISO weeks
        (date(2027, 1, 3), date(2026, 12, 28), "2026-W53"),  # still 2026's week
        (date(2027, 1, 4), date(2027, 1, 4), "2027-W01"),
        (date(2025, 12, 29), date(2025, 12, 29), "2026-W01"),  # 2026's first week
    ],
)
def test_iso_weeks(day: date, monday: date, week_id: str) -> None:
    assert week_of(day) == monday
    assert iso_week_id(monday) == week_id
    assert week_start_of_id(week_id) == monday


@pytest.mark.parametrize("bad", ["2026-10", "2026-W54", "26-W10", "2026-W1", "2026W10", ""])
def test_bad_week_ids(bad: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        week_start_of_id(bad)


def _row(user: str, day: date, seconds: float, language: str) -> DailyRow:
    breakdown = {dim: {} for dim in DIMENSIONS}
    breakdown["language"] = {language: seconds}
    return DailyRow(user, day, "UTC", seconds, 1, 0.0, 0.0, breakdown)


def test_weekly_row_sums_only_that_users_week() -> None:
    rows = [
        _row("u", date(2026, 3, 2), 100, "Go"),
        _row("u", date(2026, 3, 8), 50, "Rust"),
        _row("u", date(2026, 3, 9), 999, "Go"),  # next week
        _row("v", date(2026, 3, 3), 999, "Go"),  # someone else
    ]
    week = weekly_row("u", date(2026, 3, 2), rows)
    assert week.total_seconds == 150
    assert week.breakdown["language"] == {"Go": 100, "Rust": 50}


def _events(*events: AccountCreated | ProfileUpdated) -> list[tuple[int, str]]:
    return [(offset, encode_event(e).decode()) for offset, e in enumerate(events, start=10)]


def test_member_of_folds_profile_changes_in_log_order() -> None:
    created = AccountCreated(
        event_id="e1", user_id="u", occurred_at=1, username="ada", account_number_hash=""
    )
    public = ProfileUpdated(
        event_id="e2", user_id="u", occurred_at=2, is_public=True, show_in_leaderboard=True
    )
    country = ProfileUpdated(event_id="e3", user_id="u", occurred_at=3, country="DE")
    cleared = ProfileUpdated(event_id="e4", user_id="u", occurred_at=4, country="")
    member = member_of("u", _events(created, public, country))
    assert member is not None
    assert (member.username, member.eligible, member.country, member.version) == (
        "ada",
        True,
        "DE",
        12,
    )
    later = member_of("u", _events(created, public, country, cleared))
    assert later is not None
    assert later.country == ""
    # Languages are hidden unless the profile shows them (language boards, top language).
    assert not member.languages_public
    shows = ProfileUpdated(event_id="e5", user_id="u", occurred_at=5, profile_show_languages=True)
    showing = member_of("u", _events(created, public, shows))
    assert showing is not None
    assert showing.languages_public
    assert member_of("u", _events(created))
    assert not member_of("u", _events(created)).eligible  # type: ignore[union-attr]
    assert member_of("u", _events(public)) is None  # no account: no member


def _entry(user: str, rank: int, seconds: float) -> LeaderboardEntry:
    return LeaderboardEntry(
        rank, user, user, None, seconds, {"language": {}, "editor": {}, "os": {}}
    )


def test_rank_changes_only_for_moves() -> None:
    before = {"a": _entry("a", 1, 100), "b": _entry("b", 2, 50), "c": _entry("c", 3, 10)}
    after = {"a": _entry("a", 2, 100), "b": _entry("b", 1, 150), "c": _entry("c", 3, 20)}
    after["d"] = _entry("d", 4, 5)
    del after["c"]
    changes = dict(rank_changes("2026-W10", before, after))
    assert set(changes) == {"a", "b", "c", "d"}
    assert (changes["a"].rank, changes["a"].previous_rank) == (2, 1)
    assert (changes["c"].rank, changes["c"].previous_rank, changes["c"].total_seconds) == (
        None,
        3,
        0.0,
    )
    assert (changes["d"].rank, changes["d"].previous_rank) == (4, None)
    assert rank_changes("w", before, before) == []


def test_top_update_only_when_what_the_public_sees_changed() -> None:
    top = [_entry("a", 1, 100), _entry("b", 2, 50)]
    assert top_update("2026-W10", top, list(top)) is None
    # A field the public channel does not show (the breakdown) is no change.
    quieter = [_entry("a", 1, 100), _entry("b", 2, 50)]
    quieter[0].breakdown["language"]["Go"] = 100.0
    assert top_update("2026-W10", top, quieter) is None
    for after in (
        [_entry("a", 1, 101), _entry("b", 2, 50)],  # more time, same ranks
        [_entry("b", 1, 150), _entry("a", 2, 100)],  # reordered
        [_entry("a", 1, 100)],  # one left
        [*top, _entry("c", 3, 5)],  # one joined
    ):
        update = top_update("2026-W10", top, after)
        assert update is not None
        assert update.board == "2026-W10"
        assert [(e.rank, e.username, e.total_seconds) for e in update.entries] == [
            (e.rank, e.username, e.seconds) for e in after
        ]
    assert top_update("w", [], []) is None
    emptied = top_update("w", top, [])
    assert emptied is not None
    assert emptied.entries == []


def test_audience_keeps_the_listened_users_per_week_and_the_public_tops() -> None:
    w1, w2 = date(2026, 3, 2), date(2026, 3, 9)
    keys = [("a", w1), ("b", w1), ("a", w2), ("c", w2)]
    assert board_channels(keys) == [
        user_channel("a"),
        user_channel("b"),
        user_channel("c"),
        PUBLIC_LEADERBOARD,
    ]
    assert audience_of(keys, set()) == Audience(users={}, tops=())
    assert audience_of(keys, {user_channel("a"), user_channel("zz")}) == Audience(
        users={w1: frozenset({"a"}), w2: frozenset({"a"})}, tops=()
    )
    assert audience_of(keys, {user_channel("c"), PUBLIC_LEADERBOARD}) == Audience(
        users={w2: frozenset({"c"})}, tops=(w1, w2)
    )
