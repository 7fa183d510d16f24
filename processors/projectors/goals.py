"""Live goals: a batch subscriber telling a user's sockets when a heartbeat decided a goal.

After a batch, every user whose recomputed days include a recent date is handed to the watch's
own thread (the subscriber only queues: it holds the projector's thread, and a weekly goal needs
the week's other days, which is a store read). There, for a user somebody listens to, the
running period of each of their goals (in the user's timezone, now) is read back from the daily
rows (:func:`projections.goals.period_progress`): an ``at_least`` goal that reached its target sends
``goal.reached``, an ``at_most`` goal over its limit ``goal.exceeded``, once per goal and period
while the process runs. A process started afresh knows nothing it sent before: a goal already
decided may be told once more with the next heartbeat of its period (messages say what the API
answers, so a second one only repeats it). Late heartbeats for past periods tell nothing: only
the running period is watched.

Where goals and timezones come from is the composition root's business (``serve`` reads the
account directory it already folds).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from live.port import LivePublisher, user_channel
from processors.projectors.batches import ProjectedBatch
from projections.daily import DailyRow, zone
from projections.goals import GoalTerms, period_bounds, period_progress
from schemas.live import GoalReached

_log = logging.getLogger(__name__)

# Only days this recent can be in a running period (a week, plus the spread of timezones).
_RECENT = timedelta(days=8)
_FORGET_AFTER = 5_000  # announced keys kept before old periods are dropped


class WatchedGoal(GoalTerms, Protocol):
    @property
    def goal_id(self) -> str: ...

    @property
    def title(self) -> str: ...


@dataclass(frozen=True, slots=True)
class GoalOwner:
    """What the watch needs of a user: their timezone and their goals."""

    timezone: str
    goals: Sequence[WatchedGoal]


GoalSource = Callable[[str], GoalOwner | None]
RowReader = Callable[[str, date, date], list[DailyRow]]


def decided_messages(
    goals: Sequence[WatchedGoal],
    rows: Sequence[DailyRow],
    today: date,
    announced: set[tuple[str, date]],
) -> list[GoalReached]:
    """Pure: a message for each goal whose running period is newly decided (its key is added
    to ``announced``)."""
    messages = []
    for goal in goals:
        start, end = period_bounds(goal.period, today)
        key = (goal.goal_id, start)
        if key in announced:
            continue
        now = period_progress(goal, rows, start, end, today)
        decided = now.status == ("success" if goal.kind == "at_least" else "fail")
        if not decided:
            continue
        announced.add(key)
        messages.append(
            GoalReached(
                type="goal.reached" if goal.kind == "at_least" else "goal.exceeded",
                goal_id=goal.goal_id,
                title=goal.title,
                period=goal.period,
                kind=goal.kind,
                period_start=start,
                period_end=end,
                current_seconds=round(now.seconds, 3),
                target_seconds=goal.target_seconds,
            )
        )
    return messages


class GoalWatch:
    """A :class:`processors.projectors.batches.BatchSubscriber` publishing goal messages.

    ``start()`` runs the checks on a daemon thread of its own; without it, :meth:`check_pending`
    runs them on the caller's (tests). ``close()`` stops the thread.
    """

    def __init__(
        self,
        publisher: LivePublisher,
        source: GoalSource,
        rows: RowReader,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._publisher = publisher
        self._source = source
        self._rows = rows
        self._now = now
        self._pending: queue.SimpleQueue[frozenset[str] | None] = queue.SimpleQueue()
        self._announced: set[tuple[str, date]] = set()
        self._thread: threading.Thread | None = None

    def start(self) -> GoalWatch:
        self._thread = threading.Thread(target=self._run, name="goal-watch", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._pending.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    def after_batch(self, batch: ProjectedBatch) -> None:
        """Queue the users whose recent days the batch recomputed (cheap: no reads here)."""
        recent = self._now().date() - _RECENT
        users = frozenset(
            row.user_id for step in batch.passes for row in step.rows if row.date >= recent
        )
        if users:
            self._pending.put(users)

    def check_pending(self) -> None:
        """Check every user queued so far (on the caller's thread)."""
        users: set[str] = set()
        while True:
            try:
                item = self._pending.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                users |= item
        self._check(users)

    def _run(self) -> None:
        while True:
            item = self._pending.get()
            if item is None:
                return
            users = set(item)
            # Coalesce what queued meanwhile: one read per user however many batches.
            while True:
                try:
                    more = self._pending.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._check(users)
                    return
                users |= more
            self._check(users)

    def _check(self, users: set[str]) -> None:
        # Only users somebody listens to: a message nobody receives is not worth a read.
        listened = self._publisher.listening({user_channel(u) for u in users})
        for user_id in sorted(u for u in users if user_channel(u) in listened):
            try:
                self._check_user(user_id)
            except Exception:
                _log.exception("goal check for user %s failed; nothing was published", user_id)

    def _check_user(self, user_id: str) -> None:
        owner = self._source(user_id)
        if owner is None or not owner.goals:
            return
        today = self._now().astimezone(zone(owner.timezone)).date()
        first = min(period_bounds(goal.period, today)[0] for goal in owner.goals)
        rows = self._rows(user_id, first, today)
        for message in decided_messages(owner.goals, rows, today, self._announced):
            self._publisher.publish_user(user_id, message)
        if len(self._announced) > _FORGET_AFTER:
            old = today - _RECENT
            self._announced = {key for key in self._announced if key[1] >= old}
