"""The heartbeats family: the raw archive, its tombstones, and the day and week rows.

One pass per segment: append the heartbeats to the deduplicated raw archive and the deletions to
its tombstones, then recompute every (user, local day) the segment touched from the archive minus
the tombstones (so late, duplicate and out-of-order heartbeats are folded exactly as if they had
arrived in order) and replace those day rows, then the weeks they are in. Writing is idempotent:
projecting the same segment again produces the same rows.

Deletions commute with everything: a tombstone hides its heartbeat whenever the heartbeat is
inserted, before or after it (a redelivered or re-sent heartbeat stays deleted), so the tables
do not depend on how the log is cut into batches, which is what lets a replay equal the live run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date

from processors.projectors.batches import NOTHING, BatchResult, Pass, ProjectedBatch
from processors.projectors.boards import BoardWatch
from projections.daily import DEFAULT_TIMEOUT_S, DailyRow, compute_day, local_date
from projections.durations import FoldInput
from projections.leaderboard import week_of, weekly_row
from projections.ports import DayKey, ProjectionWriter
from schemas.events import HeartbeatsDeleted, HeartbeatsReceived
from schemas.heartbeat import Heartbeat
from schemas.languages import with_canonical_language


def touched_days(heartbeats: Iterable[Heartbeat]) -> set[DayKey]:
    """The (user, local date) of each heartbeat: the date of its time as the archive stores it
    (``Heartbeat`` holds it to the millisecond), in the zone stamped on it."""
    return {(hb.user_id, local_date(hb.time, hb.timezone)) for hb in heartbeats}


def deleted_days(deletions: Iterable[HeartbeatsDeleted]) -> set[DayKey]:
    return {(event.user_id, event.date) for event in deletions}


def day_rows(
    days: Mapping[DayKey, Sequence[FoldInput]], *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[DailyRow]:
    """Pure: one daily row per (user, day) from that day's archived heartbeats.

    Each heartbeat counts up to the end of the day in its own zone (``projections.daily``), so a
    row depends only on the day's heartbeats, never on which of them arrived last.

    A day without heartbeats gets a row of zeros: it replaces what the day held before its
    heartbeats were deleted. It is written whenever such a day is touched, whether a row existed
    or not, so the result never depends on earlier batches.
    """
    return [
        compute_day(user_id, day, beats, timeout_s=timeout_s)
        for (user_id, day), beats in sorted(days.items())
    ]


def by_user(keys: Iterable[tuple[str, date]]) -> dict[str, list[date]]:
    grouped: dict[str, list[date]] = {}
    for user_id, day in keys:
        grouped.setdefault(user_id, []).append(day)
    return grouped


class HeartbeatsProjection:
    """Archives a segment's heartbeats and deletions and recomputes the days and weeks they
    touched (blocking, on the projector's thread)."""

    def __init__(
        self, store: ProjectionWriter, watch: BoardWatch, *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self._store = store
        self._watch = watch
        self._timeout_s = timeout_s

    def project(self, events: Sequence[HeartbeatsReceived | HeartbeatsDeleted]) -> ProjectedBatch:
        """One segment (no erasure inside it) into the archive, tombstones, days and weeks."""
        # Canonical languages here too, so records appended before the rule are merged on replay.
        heartbeats = [
            with_canonical_language(hb)
            for event in events
            if isinstance(event, HeartbeatsReceived)
            for hb in event.heartbeats
        ]
        deletions = [event for event in events if isinstance(event, HeartbeatsDeleted)]
        if not heartbeats and not deletions:
            return NOTHING
        self._store.insert_heartbeats(heartbeats)
        self._store.delete_heartbeats(deletions)
        days = touched_days(heartbeats) | deleted_days(deletions)
        rows, passed = self.recompute(days, heartbeats)
        deleted_ids = sum(len(event.ids) for event in deletions)
        result = BatchResult(len(heartbeats), len(rows), deleted_ids=deleted_ids)
        return ProjectedBatch(result, passes=passed)

    def recompute(
        self, days: set[DayKey], heartbeats: Sequence[Heartbeat], *, drop_empty: bool = False
    ) -> tuple[list[DailyRow], tuple[Pass, ...]]:
        """Replace the rows of ``days`` and of their weeks from the archive; the rows, and the
        pass (with ``heartbeats``, what the live push tells of it).

        With ``drop_empty`` (erasures) a day left without heartbeats loses its row instead of
        getting a row of zeros, and so does a week left without days.
        """
        if not days:
            return [], ()
        fetched = self._store.beats_for_days(days)
        rows = day_rows(fetched, timeout_s=self._timeout_s)
        empty = {key for key, beats in fetched.items() if drop_empty and not beats}
        for user_id, dates in by_user(empty).items():
            self._store.drop_days(user_id, dates)
        self._store.upsert_daily([r for r in rows if (r.user_id, r.date) not in empty])
        # Weeks after days: a week is the sum of its (just written) daily rows.
        weeks = self._store.daily_rows_for_weeks({(r.user_id, week_of(r.date)) for r in rows})
        gone = [key for key, days_of_week in weeks.items() if drop_empty and not days_of_week]

        def write_weeks() -> None:
            for user_id, mondays in by_user(gone).items():
                self._store.drop_weeks(user_id, mondays)
            self._store.upsert_weekly(
                [
                    weekly_row(user_id, monday, days_of_week)
                    for (user_id, monday), days_of_week in weeks.items()
                    if (user_id, monday) not in gone
                ]
            )

        before, after = self._watch.around(weeks, write_weeks)
        return rows, (Pass(tuple(heartbeats), tuple(rows), before, after),)
