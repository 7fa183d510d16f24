"""A day's fold kept between batches, so a heartbeat later than the day's others costs the same
however many the day already holds. Pure: no I/O, no clock, no database.

:func:`projections.daily.compute_day` folds a whole day from its heartbeats. That is a left fold
in ``(time, event_id)`` order, so what it knows after the day's last heartbeat
(:class:`DayFold`: the open span and the reach of :class:`projections.durations.SpanFold`, the
totals of the spans it closed, the count, the first and last heartbeat) is all it needs to fold
heartbeats that sort after that one. :func:`extend_day` does exactly that, and
:func:`row_of_fold` gives the day row; both perform the same float operations in the same
order as the reference fold, so the row is *equal* to ``compute_day`` over all the heartbeats,
not close to it.

Anything else (a heartbeat that sorts before or at the day's last one: late, out of order, a
duplicate or a re-sent copy; a deletion; an erasure) cannot be patched onto the fold:
:func:`extend_day` answers ``None`` and the caller folds the day again from its heartbeats
(:func:`fold_day`). The fold also records the timeout it was made with; a fold of another
timeout is not extended.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from projections.daily import EMPTY_DAY_TIMEZONE, DailyRow, day_heartbeats
from projections.durations import DIMENSIONS, FoldInput, SpanFold, Totals, totals

__all__ = [
    "DayFold",
    "decode_fold",
    "encode_fold",
    "extend_day",
    "fold_day",
    "follows",
    "row_of_fold",
]


@dataclass(frozen=True, slots=True)
class DayFold:
    """What the reference fold of one (user, local day) knows after the day's last heartbeat.

    ``last`` is that heartbeat's ``(time, event_id)`` (``None`` for a day without heartbeats);
    ``start``, ``end``, ``reach`` and ``group`` are the open span and reach of
    :class:`~projections.durations.SpanFold`; ``closed`` the totals of the spans already closed.
    ``timezone`` labels the row (the last heartbeat's zone).
    """

    user_id: str
    date: date
    timeout_s: float
    heartbeat_count: int
    first_time: float
    last: tuple[float, str] | None
    timezone: str
    start: float
    end: float
    reach: float
    group: tuple[str, ...] | None
    closed: Totals

    def span_fold(self) -> SpanFold:
        return SpanFold(self.timeout_s, self.start, self.end, self.reach, self.group)


def fold_day(
    user_id: str, day: date, heartbeats: Iterable[FoldInput], *, timeout_s: float
) -> DayFold:
    """The fold of ``user_id``'s ``day`` from all its heartbeats (a superset may be passed, as
    to :func:`projections.daily.compute_day`)."""
    empty = DayFold(
        user_id, day, timeout_s, 0, 0.0, None, EMPTY_DAY_TIMEZONE, 0.0, 0.0, math.inf, None,
        totals(()),
    )  # fmt: skip
    folded = _extend(empty, heartbeats)
    if folded is None:  # pragma: no cover - nothing sorts at or before an empty day's end
        raise AssertionError("an empty day takes any heartbeat")
    return folded


def extend_day(
    fold: DayFold, heartbeats: Iterable[FoldInput], *, timeout_s: float
) -> DayFold | None:
    """``fold`` with ``heartbeats`` folded in, or ``None`` when that would not equal folding the
    day again (see :func:`follows`). Heartbeats of other users or days are ignored."""
    if fold.timeout_s != timeout_s:
        return None
    return _extend(fold, heartbeats)


def follows(fold: DayFold, heartbeats: Iterable[FoldInput], *, timeout_s: float) -> bool:
    """Whether :func:`extend_day` takes ``heartbeats``: the fold was made with ``timeout_s`` and
    every one of them sorts after the day's last heartbeat by ``(time, event_id)`` (so none is
    late, out of order or a copy of one already folded). Cheap: no fold, no dating."""
    if fold.timeout_s != timeout_s:
        return False
    last = fold.last
    return last is None or all((hb.time, hb.event_id) > last for hb in heartbeats)


def _extend(fold: DayFold, heartbeats: Iterable[FoldInput]) -> DayFold | None:
    todays, period_end = day_heartbeats(fold.user_id, fold.date, heartbeats)
    if not todays:
        return fold
    first, last = todays[0], todays[-1]
    if fold.last is not None and (first.time, first.event_id) <= fold.last:
        return None
    spans = fold.span_fold()
    closed = spans.feed(todays, period_end)
    return DayFold(
        user_id=fold.user_id,
        date=fold.date,
        timeout_s=fold.timeout_s,
        heartbeat_count=fold.heartbeat_count + len(todays),
        first_time=fold.first_time if fold.last is not None else first.time,
        last=(last.time, last.event_id),
        timezone=last.timezone,
        start=spans.start,
        end=spans.end,
        reach=spans.reach,
        group=spans.group,
        closed=totals(closed, after=fold.closed) if closed else fold.closed,
    )


def row_of_fold(fold: DayFold) -> DailyRow:
    """The day row: equal to ``compute_day`` over the heartbeats the fold has seen."""
    folded = totals(fold.span_fold().open_spans(), after=fold.closed)
    return DailyRow(
        user_id=fold.user_id,
        date=fold.date,
        timezone=fold.timezone,
        total_seconds=folded.total_seconds,
        heartbeat_count=fold.heartbeat_count,
        first_time=fold.first_time,
        last_time=fold.last[0] if fold.last is not None else 0.0,
        breakdown=folded.by_dimension,
    )


def encode_fold(fold: DayFold) -> str:
    """The fold as JSON text, for a store to keep (floats round-trip exactly)."""
    return json.dumps(
        {
            "timeout_s": fold.timeout_s,
            "count": fold.heartbeat_count,
            "first_time": fold.first_time,
            "last": list(fold.last) if fold.last is not None else None,
            "timezone": fold.timezone,
            "open": (
                None if fold.group is None else [fold.start, fold.end, fold.reach, list(fold.group)]
            ),
            "closed_total": fold.closed.total_seconds,
            "closed": fold.closed.by_dimension,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def decode_fold(user_id: str, day: date, text: str) -> DayFold:
    """The fold :func:`encode_fold` wrote; ``ValueError`` for text it cannot have written."""
    try:
        data: dict[str, Any] = json.loads(text)
        opened = data["open"]
        last = data["last"]
        start, end, reach, group = (
            (0.0, 0.0, math.inf, None)
            if opened is None
            else (float(opened[0]), float(opened[1]), float(opened[2]), tuple(map(str, opened[3])))
        )
        closed = data["closed"]
        return DayFold(
            user_id=user_id,
            date=day,
            timeout_s=float(data["timeout_s"]),
            heartbeat_count=int(data["count"]),
            first_time=float(data["first_time"]),
            last=None if last is None else (float(last[0]), str(last[1])),
            timezone=str(data["timezone"]),
            start=start,
            end=end,
            reach=reach,
            group=group,
            closed=Totals(
                float(data["closed_total"]),
                {
                    name: {str(k): float(v) for k, v in closed.get(name, {}).items()}
                    for name in DIMENSIONS
                },
            ),
        )
    except (KeyError, IndexError, TypeError, AttributeError, json.JSONDecodeError) as error:
        raise ValueError(f"not a day fold: {error}") from error
