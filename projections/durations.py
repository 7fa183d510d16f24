"""Turning heartbeats into time: the one duration rule every API and projection shares.

This module is the reference rule from ``shared/reference/wakatime-compat.md`` written as pure
functions (no I/O, no clock, no database): the same heartbeats always give the same spans, whatever
order or batching they arrived in and however often they were delivered.

The rule, per user:

* Heartbeats are deduplicated by ``event_id`` and ordered by ``(time, event_id)``. The tie-break on
  ``event_id`` makes the order total, so shuffled input folds identically.
* A heartbeat covers ``[time, time + duration]``. WakaTime heartbeats have ``duration == 0``;
  CodeTrackr's own clients send an explicit duration (ActivityWatch treats events the same way).
* A span's ``end`` is the latest instant covered so far. For the next heartbeat,
  ``gap = time - end``. If ``gap < timeout`` the gap belongs to the current span (even when the next
  heartbeat is in another group: time between heartbeats of different groups goes to the earlier
  one); otherwise nothing is added and a new span starts.
* A new span also starts when the group (the :data:`DIMENSIONS` values) changes. It starts no
  earlier than the previous span's end, so overlapping coverage is never counted twice.
* A lone heartbeat, and the last one of a run, add 0 s unless they carry a duration.
* ``period_end`` gives each heartbeat the end of the period it belongs to (the end of its own
  local day, in the zone stamped on it): its coverage is cut there, and a gap after it is counted
  no further than the latest period end among the heartbeats before the gap. A heartbeat at or
  after its own period end is not the period's and is left out. So a day whose machines sit in
  different zones counts each heartbeat up to its own midnight, and adding a heartbeat never
  lowers the total (it only adds coverage, shortens gaps or moves the reach later).

Filters (project, language, ...) apply AFTER spans are computed (:func:`filter_spans`), so a
filtered-out heartbeat never creates a false gap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import Protocol, TypeVar

__all__ = [
    "DIMENSIONS",
    "SPAN_KEYS",
    "Beat",
    "FoldInput",
    "Span",
    "SpanFold",
    "Totals",
    "filter_spans",
    "fold_spans",
    "group_of",
    "total_seconds",
    "totals",
    "unique_heartbeats",
]

DIMENSIONS: tuple[str, ...] = (
    "project",
    "language",
    "editor",
    "os",
    "machine",
    "branch",
    "category",
    "entity",
)
# What a span is keyed by: the dimensions, then whether its heartbeats were writes ("1" or "").
# `is_write` is not a stored dimension (no daily breakdown); it exists for the writes-only filter.
SPAN_KEYS: tuple[str, ...] = (*DIMENSIONS, "is_write")


class FoldInput(Protocol):
    """What the rule reads of a heartbeat. :class:`schemas.heartbeat.Heartbeat` has it all, and
    so does the lighter :class:`Beat` that projections read back from storage."""

    @property
    def event_id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def time(self) -> float: ...
    @property
    def duration(self) -> float: ...
    @property
    def received_at(self) -> float: ...
    @property
    def timezone(self) -> str: ...
    @property
    def is_write(self) -> bool: ...
    @property
    def project(self) -> str | None: ...
    @property
    def language(self) -> str | None: ...
    @property
    def editor(self) -> str | None: ...
    @property
    def os(self) -> str | None: ...
    @property
    def machine(self) -> str | None: ...
    @property
    def branch(self) -> str | None: ...
    @property
    def category(self) -> str: ...
    @property
    def entity(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Beat:
    """Only the fields the rule reads: recomputing a stored day decodes these, not whole rows."""

    event_id: str
    user_id: str
    time: float
    duration: float
    received_at: float
    timezone: str
    is_write: bool
    project: str | None
    language: str | None
    editor: str | None
    os: str | None
    machine: str | None
    branch: str | None
    category: str
    entity: str


B = TypeVar("B", bound=FoldInput)

_DIMENSION_INDEX: dict[str, int] = {name: i for i, name in enumerate(SPAN_KEYS)}
_content = attrgetter(*Beat.__dataclass_fields__)
_dimension_values = attrgetter(*DIMENSIONS)


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of continuous activity in one group.

    ``group`` holds the values of :data:`SPAN_KEYS`, in that order; a missing value is ``""``.
    """

    start: float
    end: float
    group: tuple[str, ...]

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def value(self, dimension: str) -> str:
        """The span's value for one of :data:`SPAN_KEYS`."""
        return self.group[_dimension_index(dimension)]


@dataclass(frozen=True, slots=True)
class Totals:
    """Seconds in total and per value of every dimension.

    ``by_dimension[dimension][value]`` is the time of the spans with that value. Every value seen
    is listed, even with 0 s, so a day lists every project it touched.
    """

    total_seconds: float
    by_dimension: dict[str, dict[str, float]]


def group_of(heartbeat: FoldInput) -> tuple[str, ...]:
    """The values of :data:`SPAN_KEYS` for one heartbeat (``None`` becomes ``""``)."""
    return (
        *(value or "" for value in _dimension_values(heartbeat)),
        "1" if heartbeat.is_write else "",
    )


def unique_heartbeats(heartbeats: Iterable[B]) -> list[B]:
    """One heartbeat per ``event_id``, ordered by ``(time, event_id)``.

    Copies of one event are normally identical. When they are not (a client resent it), the copy
    received last wins, as in the ClickHouse archive (``ReplacingMergeTree(received_at)``); the
    final tie-break on the serialized content keeps the choice independent of arrival order.
    """
    chosen: dict[str, B] = {}
    for heartbeat in heartbeats:
        current = chosen.get(heartbeat.event_id)
        if current is None or _preferred(heartbeat, current):
            chosen[heartbeat.event_id] = heartbeat
    return sorted(chosen.values(), key=_order_key)


def fold_spans(
    heartbeats: Iterable[FoldInput],
    *,
    timeout_s: float,
    period_end: Callable[[FoldInput], float] | None = None,
) -> list[Span]:
    """Fold one user's heartbeats into spans with the reference rule (see the module docs).

    ``timeout_s`` must be positive. Spans come out in time order and never overlap. Without
    ``period_end`` nothing is cut.
    """
    fold = SpanFold.empty(timeout_s)
    spans = fold.feed(unique_heartbeats(heartbeats), period_end)
    return [*spans, *fold.open_spans()]


@dataclass(slots=True)
class SpanFold:
    """The reference rule as a resumable left fold: what :func:`fold_spans` knows after the
    heartbeats fed so far, so more heartbeats that sort after all of them can be folded later
    without reading the earlier ones again.

    ``group`` is ``None`` until a heartbeat was folded; then ``[start, end]`` is the open span
    (the one later heartbeats may still extend) and ``reach`` the latest period end seen.
    Feeding ``a`` then ``b`` gives exactly the spans of feeding ``a + b`` (the same float
    operations in the same order), provided every heartbeat of ``b`` sorts after those of ``a``
    by ``(time, event_id)`` and each run is deduplicated and ordered (:func:`unique_heartbeats`).
    """

    timeout_s: float
    start: float = 0.0
    end: float = 0.0
    reach: float = math.inf
    group: tuple[str, ...] | None = None

    @classmethod
    def empty(cls, timeout_s: float) -> SpanFold:
        if not (timeout_s > 0 and math.isfinite(timeout_s)):
            raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
        return cls(timeout_s)

    def feed(
        self,
        ordered: Iterable[FoldInput],
        period_end: Callable[[FoldInput], float] | None = None,
    ) -> list[Span]:
        """Fold ``ordered`` (deduplicated, in ``(time, event_id)`` order, after everything fed
        before) and return the spans it closed; the open span stays in the fold."""
        timeout_s = self.timeout_s
        spans: list[Span] = []
        start, end, reach, group = self.start, self.end, self.reach, self.group
        for heartbeat in ordered:
            time = heartbeat.time
            limit = math.inf if period_end is None else period_end(heartbeat)
            if not time < limit:
                continue
            # `d > 0` is False for NaN as well, so a nonsense duration covers nothing.
            covered_until = time + heartbeat.duration if heartbeat.duration > 0 else time
            covered_until = min(covered_until, limit)
            next_group = group_of(heartbeat)
            if group is None:
                start, end, reach, group = time, covered_until, limit, next_group
                continue
            if time - end < timeout_s and time <= reach:
                reach = max(reach, limit)
                if next_group == group:
                    end = max(end, covered_until)
                    continue
                # The gap (if any) goes to the earlier group; the new span starts where the old
                # one's coverage ends, so coverage both heartbeats share is counted once.
                end = max(end, time)
                spans.append(Span(start, end, group))
                start, end, group = end, max(end, covered_until), next_group
            else:
                if time - end < timeout_s:
                    # A short gap that outlasts every earlier heartbeat's period: counted up to
                    # the latest period end, not beyond (`end <= reach` always holds).
                    end = reach
                spans.append(Span(start, end, group))
                start, end, reach, group = time, covered_until, max(reach, limit), next_group
        self.start, self.end, self.reach, self.group = start, end, reach, group
        return spans

    def open_spans(self) -> list[Span]:
        """The open span, if any heartbeat was folded: what ending the fold now would close."""
        return [] if self.group is None else [Span(self.start, self.end, self.group)]


def totals(spans: Iterable[Span], *, after: Totals | None = None) -> Totals:
    """Sum span seconds overall and per value of every dimension.

    With ``after``, the sums go on from those totals (which are not changed): the result is
    exactly ``totals(earlier + spans)`` when ``after`` is ``totals(earlier)``.
    """
    total = 0.0 if after is None else after.total_seconds
    by_dimension: dict[str, dict[str, float]] = (
        {name: {} for name in DIMENSIONS}
        if after is None
        else {name: dict(after.by_dimension.get(name, {})) for name in DIMENSIONS}
    )
    per_dimension = [by_dimension[name] for name in DIMENSIONS]
    for span in spans:
        seconds = span.seconds
        total += seconds
        for bucket, value in zip(per_dimension, span.group, strict=False):  # is_write: no bucket
            bucket[value] = bucket.get(value, 0.0) + seconds
    return Totals(total_seconds=total, by_dimension=by_dimension)


def filter_spans(spans: Iterable[Span], **equals: str | Collection[str]) -> list[Span]:
    """Keep the spans whose dimensions match every filter.

    ``filter_spans(spans, project="api")`` keeps one value; ``language={"Go", "Rust"}`` keeps any
    of several. Filtering after folding is what keeps excluded activity from opening gaps.
    """
    checks: list[tuple[int, Collection[str]]] = []
    for dimension, wanted in equals.items():
        allowed: Collection[str] = (wanted,) if isinstance(wanted, str) else frozenset(wanted)
        checks.append((_dimension_index(dimension), allowed))
    return [span for span in spans if all(span.group[i] in allowed for i, allowed in checks)]


def _dimension_index(dimension: str) -> int:
    try:
        return _DIMENSION_INDEX[dimension]
    except KeyError:
        raise ValueError(f"unknown dimension {dimension!r}; expected one of {SPAN_KEYS}") from None


def _order_key(heartbeat: FoldInput) -> tuple[float, str]:
    return (heartbeat.time, heartbeat.event_id)


def _preferred(candidate: FoldInput, current: FoldInput) -> bool:
    if candidate.received_at != current.received_at:
        return candidate.received_at > current.received_at
    # Differing copies received at the same instant: pick by what the rule reads (compared as
    # text so None sorts too) so the order of arrival doesn't matter.
    return tuple(map(str, _content(candidate))) > tuple(map(str, _content(current)))


def total_seconds(heartbeats: Iterable[FoldInput], *, timeout_s: float) -> float:
    """Shorthand for ``totals(fold_spans(...)).total_seconds``."""
    return totals(fold_spans(heartbeats, timeout_s=timeout_s)).total_seconds
