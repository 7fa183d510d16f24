"""A user's days as the read API needs them: from the daily projection when it answers the
question, folded from the archived heartbeats when the question differs.

The daily projection is folded with the default timeout, all heartbeats, every project, and each
heartbeat dated (and its time cut at midnight) in the timezone it was sent with. A read that asks
for another timeout, writes only, one project (or some branches) or another timezone is folded
here from the archive with the very same rule (:func:`projections.daily.day_spans`), so both
paths give the same seconds for the same question; tests hold them to it. Asked in another
timezone, every heartbeat is dated and cut in that one zone instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from api.rules.projects import NO_NAMING, ProjectNaming
from api.rules.stats import UNKNOWN, DateRange
from projections.daily import (
    DEFAULT_TIMEOUT_S,
    DailyRow,
    day_bounds,
    day_spans,
    day_timezone,
    local_date,
    row_of,
)
from projections.durations import Beat, Span, filter_spans
from projections.ports import ActivityStore


@dataclass(frozen=True, slots=True)
class Question:
    """How to count: the rule's parameters and the filters applied after folding."""

    timeout_minutes: int = round(DEFAULT_TIMEOUT_S / 60)
    writes_only: bool = False
    project: str | None = None
    branches: frozenset[str] | None = None
    timezone: str | None = None  # another timezone than the one each heartbeat was sent with
    # Other dimensions to keep one value of: (span dimension, value), e.g. ("language", "Go").
    dimensions: tuple[tuple[str, str], ...] = ()
    # The owner's project aliases and labels (applied to every answer), and a label to keep.
    naming: ProjectNaming = NO_NAMING
    label: str | None = None

    @property
    def timeout_s(self) -> float:
        return self.timeout_minutes * 60.0

    @property
    def projected(self) -> bool:
        """True when the daily projection answers it as stored."""
        return (
            self.timeout_s == DEFAULT_TIMEOUT_S
            and not self.writes_only
            and self.project is None
            and self.branches is None
            and self.timezone is None
            and not self.dimensions
            and self.label is None
        )

    def filters(self) -> dict[str, Any]:
        equals: dict[str, Any] = {}
        if self.writes_only:
            equals["is_write"] = "1"
        if self.project is not None:
            # The lists show a heartbeat without project as "Unknown Project"; accept that name.
            unknown = self.project == UNKNOWN["project"]
            equals["project"] = {"", self.project} if unknown else self.project
        if self.branches is not None:
            equals["branch"] = self.branches
        for dimension, value in self.dimensions:
            # The lists show a missing value as "Other"; accept that name for it.
            equals[dimension] = {"", value} if value == "Other" else value
        if self.label is not None:
            labeled = self.naming.projects_labeled(self.label)
            if "project" in equals:
                asked = equals["project"]
                labeled &= {asked} if isinstance(asked, str) else asked
            equals["project"] = labeled
        return equals


class ActivityReader:
    def __init__(self, store: ActivityStore) -> None:
        self._store = store

    def rows(self, user_id: str, span: DateRange, question: Question) -> list[DailyRow]:
        """One row per day of ``span`` with activity, answering ``question``."""
        naming = question.naming
        if question.projected:
            return naming.rows(self._store.daily_rows(user_id, span.start, span.end))
        return [
            row_of(user_id, day, tz, beats, filter_spans(naming.spans(spans), **question.filters()))
            for day, tz, beats, spans in self._fold(user_id, span, question)
        ]

    def spans(self, user_id: str, day: date, tz: str, question: Question) -> list[Span]:
        """The spans of one day, filtered as ``question`` asks, in time order."""
        span = DateRange(day, day, question.timezone or tz)
        return [
            s
            for _, _, _, spans in self._fold(user_id, span, question)
            for s in filter_spans(question.naming.spans(spans), **question.filters())
        ]

    def spans_between(self, user_id: str, span: DateRange, question: Question) -> list[Span]:
        """Every span of the days of ``span``, filtered as ``question`` asks, day by day."""
        return [
            s
            for _, _, _, spans in self._fold(user_id, span, question)
            for s in filter_spans(question.naming.spans(spans), **question.filters())
        ]

    def _fold(
        self, user_id: str, span: DateRange, question: Question
    ) -> list[tuple[date, str, list[Beat], list[Span]]]:
        days = [span.start + timedelta(days=i) for i in range(span.days)]
        if question.timezone is None:
            stored = self._store.beats_for_days((user_id, day) for day in days)
            by_day = {day: stored.get((user_id, day), []) for day in days}
        else:
            # Re-date every heartbeat in the asked timezone.
            tz = question.timezone
            first, _ = day_bounds(span.start, tz)
            _, last = day_bounds(span.end, tz)
            by_day = {day: [] for day in days}
            for beat in self._store.beats_between(user_id, first, last):
                by_day.setdefault(local_date(beat.time, tz), []).append(replace(beat, timezone=tz))
        folded = []
        for day, beats in by_day.items():
            if not beats:
                continue
            todays, spans = day_spans(user_id, day, beats, timeout_s=question.timeout_s)
            if todays:
                folded.append((day, question.timezone or day_timezone(todays), todays, spans))
        return folded
