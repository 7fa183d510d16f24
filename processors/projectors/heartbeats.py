"""The heartbeats family: the raw archive, its tombstones, and the day and week rows.

One pass per segment: append the heartbeats to the deduplicated raw archive and the deletions to
its tombstones, then bring every (user, local day) the segment touched up to date and replace
those day rows, then the weeks they are in. Writing is idempotent: projecting the same segment
again produces the same rows.

A day is brought up to date one of two ways, with the same result (the reference fold,
:func:`projections.daily.compute_day`, over the day's archived heartbeats minus the tombstones):

* **extended**: when the segment only adds heartbeats that sort after the day's last one (the
  live case: a client sending what it just recorded), its stored fold
  (:class:`projections.dayfold.DayFold`, the ``day_folds`` projection) is carried on with them,
  whatever the day already holds; the new heartbeats' tombstones are looked up first;
* **refolded**: anything else (no stored fold, a late, out-of-order or re-sent heartbeat, a
  deletion) folds the day again from the archive. Its stored fold is forgotten *before* the
  archive changes, so a fold never stands for a day whose archive it does not describe, even
  if the pass stops half way: the fold of a day holds exactly the day's live heartbeats up to
  its last one.

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
from projections.dayfold import DayFold, extend_day, fold_day, follows, row_of_fold
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


def by_day(heartbeats: Iterable[Heartbeat]) -> dict[DayKey, list[Heartbeat]]:
    """The heartbeats of each (user, local date) they are filed under (:func:`touched_days`)."""
    days: dict[DayKey, list[Heartbeat]] = {}
    for hb in heartbeats:
        days.setdefault((hb.user_id, local_date(hb.time, hb.timezone)), []).append(hb)
    return days


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
        arriving = by_day(heartbeats)
        deleted = deleted_days(deletions)
        stored = self._store.day_folds(set(arriving) | deleted)
        extended = {
            key: fold
            for key, fold in stored.items()
            if key not in deleted and follows(fold, arriving[key], timeout_s=self._timeout_s)
        }
        stale = set(stored) - set(extended)
        # Before the archive changes: a day refolded below holds no fold until it is written.
        self._store.forget_day_folds(stale)
        self._store.insert_heartbeats(heartbeats)
        self._store.delete_heartbeats(deletions)
        folds = self._extend(extended, arriving)
        refold = (set(arriving) | deleted) - set(folds)
        rows, passed = self.recompute(refold, heartbeats, folded=folds)
        deleted_ids = sum(len(event.ids) for event in deletions)
        result = BatchResult(len(heartbeats), len(rows), deleted_ids=deleted_ids)
        return ProjectedBatch(result, passes=passed)

    def _extend(
        self, folds: Mapping[DayKey, DayFold], arriving: Mapping[DayKey, Sequence[Heartbeat]]
    ) -> dict[DayKey, DayFold]:
        """The stored folds carried on with the days' new heartbeats, those a tombstone already
        names left out (a heartbeat deleted, then sent again)."""
        if not folds:
            return {}
        gone = self._store.deleted_ids(
            (user_id, day, hb.event_id)
            for (user_id, day) in folds
            for hb in arriving[(user_id, day)]
        )
        extended: dict[DayKey, DayFold] = {}
        for (user_id, day), fold in folds.items():
            live = [
                hb for hb in arriving[(user_id, day)] if (user_id, day, hb.event_id) not in gone
            ]
            carried = extend_day(fold, live, timeout_s=self._timeout_s)
            if carried is not None:  # always: `live` is a subset of what `follows` took
                extended[(user_id, day)] = carried
        return extended

    def recompute(
        self,
        days: set[DayKey],
        heartbeats: Sequence[Heartbeat],
        *,
        drop_empty: bool = False,
        folded: Mapping[DayKey, DayFold] | None = None,
    ) -> tuple[list[DailyRow], tuple[Pass, ...]]:
        """Replace the rows of ``days`` (folded again from the archive) and of the ``folded``
        days (already brought up to date), their folds, and the rows of their weeks; the rows,
        and the pass (with ``heartbeats``, what the live push tells of it).

        With ``drop_empty`` (erasures) a day left without heartbeats loses its row instead of
        getting a row of zeros, and so does a week left without days.
        """
        folds = dict(folded or {})
        if not days and not folds:
            return [], ()
        fetched = self._store.beats_for_days(days) if days else {}
        for (user_id, day), beats in fetched.items():
            folds[(user_id, day)] = fold_day(user_id, day, beats, timeout_s=self._timeout_s)
        rows = [row_of_fold(fold) for _, fold in sorted(folds.items())]
        empty = {key for key, beats in fetched.items() if drop_empty and not beats}
        for user_id, dates in by_user(empty).items():
            self._store.drop_days(user_id, dates)
        self._store.upsert_daily([r for r in rows if (r.user_id, r.date) not in empty])
        self._store.upsert_day_folds([fold for key, fold in folds.items() if key not in empty])
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
