"""The erasure family: erasures cut a batch, and the durable ledger that makes them hold.

Erasures (:class:`UserDataErased`) do not commute: they remove what came before them in the log
and leave what comes after. So a batch is projected in segments cut at each erasure, each
segment before the erasure that follows it, exactly as if the erasure had its own batch; a
redelivered suffix of the log is projected again in the same order, so it ends the same. After a
full erasure (the account was deleted) the projector drops whatever else of the user it reads,
and it archives nothing more of the account.

Erasures are durable: each one is recorded in the projections' erasure ledger (with its log
position) before its rows are removed, and every pass reads the ledger of its users before it
writes, so the rules of :mod:`projections.erasures` hold for a new projector too (a restarted or
rebalanced worker, a replay): a deleted account's records are dropped wherever they are in the
log, a range's heartbeats from records before the erasure stay erased. A pass that wrote a user's
rows then reads the ledger again: a deletion another worker recorded meanwhile (its accounts
partition, or this partition's previous owner) is applied once more, over this pass's writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import TypeAlias

from processors.projectors.batches import NOTHING, BatchResult, Pass, ProjectedBatch
from processors.projectors.boards import BoardWatch
from processors.projectors.heartbeats import HeartbeatsProjection
from projections.erasures import ErasureRecord, LogPosition, erasure_record, fully_erased
from projections.leaderboard import week_of
from projections.ports import ProjectionWriter
from schemas.events import ACCOUNTS_TOPIC, AccountDeleted, HeartbeatEvent, UserDataErased

_log = logging.getLogger(__name__)

# Per user, the erasures recorded so far (the ledger's rows of a batch's users).
Ledger: TypeAlias = dict[str, list[ErasureRecord]]


def erasure_window(erasure: UserDataErased) -> tuple[date, date]:
    """Pure: the local dates a heartbeat in the erased range can be on, in any timezone (UTC
    offsets span -12 to +14 hours), within what a ClickHouse ``Date`` holds."""
    first, last = date(1970, 1, 1), date(2149, 6, 1)

    def utc_date(epoch: float) -> date:  # clamped first: any float must give a date
        bounded = min(max(epoch, 0.0), _EPOCH_2149)
        return datetime.fromtimestamp(bounded, UTC).date()

    if erasure.start is not None:
        first = max(first, utc_date(erasure.start) - timedelta(days=1))
    if erasure.end is not None:
        last = min(last, utc_date(erasure.end) + timedelta(days=1))
    return first, min(max(first, last), date(2149, 6, 1))


_EPOCH_2149 = datetime(2149, 6, 1, tzinfo=UTC).timestamp()


def fully_erased_users(ledger: Ledger) -> set[str]:
    return {user_id for user_id in ledger if fully_erased(user_id, ledger)}


def written_users(events: Iterable[HeartbeatEvent], ledger: Ledger) -> set[str]:
    """The users a pass over ``events`` may have written rows of (not those erased whole)."""
    return {
        event.user_id
        for event in events
        if not isinstance(event, UserDataErased) and not fully_erased(event.user_id, ledger)
    }


class ErasureProjection:
    """Records erasures in the ledger and removes what they erase from every projection."""

    def __init__(
        self,
        store: ProjectionWriter,
        watch: BoardWatch,
        heartbeats: HeartbeatsProjection,
        *,
        today: Callable[[], date],
    ) -> None:
        self._store = store
        self._watch = watch
        self._heartbeats = heartbeats
        self._today = today  # which week's board leaving it moves (UTC, as the API)

    def ledger(self, user_ids: set[str]) -> Ledger:
        return self._store.erasures_of(user_ids) if user_ids else {}

    def erase(
        self, erasure: UserDataErased, position: LogPosition | None, ledger: Ledger
    ) -> ProjectedBatch:
        """Record the erasure, remove the erased rows from every projection and recompute what
        they were part of."""
        user_id = erasure.user_id
        self._record(erasure_record(erasure, position), ledger)
        if erasure.everything:
            left = self._leave_boards(user_id)
            return ProjectedBatch(BatchResult(0, 0, erasures=(erasure,)), passes=(left,))
        # Every day the range may touch is recomputed, whether or not rows were found in it:
        # a replay of the rewritten embedded log finds no heartbeats there, yet must end equal.
        first, last = erasure_window(erasure)
        self._store.erase_ai(user_id, erasure.start, erasure.end)
        # The days' folds go before their heartbeats: they are folded again below.
        self._store.drop_day_folds(user_id, first, last)
        days = self._store.erase_heartbeats(user_id, erasure.start, erasure.end)
        days |= self._store.days_with_rows(user_id, first, last)
        rows, passed = self._heartbeats.recompute(
            {(user_id, day) for day in days}, (), drop_empty=True
        )
        return ProjectedBatch(BatchResult(0, len(rows), erasures=(erasure,)), passes=passed)

    def delete_account(
        self, deleted: AccountDeleted, offset: int, ledger: Ledger
    ) -> ProjectedBatch:
        """An ``AccountDeleted`` (at ``offset`` on the accounts topic) erases the account from
        every projection, its heartbeats too: the ``UserDataErased`` behind them may be read
        later, or not at all when appending it failed."""
        erasure = UserDataErased(
            event_id=deleted.event_id, user_id=deleted.user_id, occurred_at=deleted.occurred_at
        )
        at = LogPosition(ACCOUNTS_TOPIC, 0, offset)  # the accounts topic's one partition
        self._record(erasure_record(erasure, at), ledger)
        left = self._leave_boards(deleted.user_id)
        return ProjectedBatch(BatchResult(0, 0, erasures=(erasure,)), passes=(left,))

    def erase_again(self, user_ids: set[str], known: set[str]) -> ProjectedBatch:
        """Erase again the users this pass wrote whose account deletion was recorded since the
        pass read the ledger (by another worker, concurrently): every write of this pass came
        before this read, so this removal comes after all of them."""
        if not user_ids:
            return NOTHING
        passes = []
        for user_id in sorted(fully_erased_users(self.ledger(user_ids)) - known):
            _log.info("erasing again writes that raced the deletion of %s", user_id)
            passes.append(self._leave_boards(user_id))
        return ProjectedBatch(BatchResult(0, 0), passes=tuple(passes))

    def _record(self, record: ErasureRecord, ledger: Ledger) -> None:
        """Add ``record`` to the ledger (the store's unless already there, and the batch's).

        Recorded before the rows are removed: a worker whose writes land after the removal
        then finds the record when it reads the ledger again (:meth:`erase_again`).
        """
        recorded = ledger.setdefault(record.user_id, [])
        if all(known.erasure_id != record.erasure_id for known in recorded):
            self._store.record_erasure(record)
            recorded.append(record)

    def _leave_boards(self, user_id: str) -> Pass:
        """Erase everything of the user (which takes them off the boards)."""
        week = (user_id, week_of(self._today()))
        before, after = self._watch.around([week], lambda: self._store.erase_user(user_id))
        return Pass(before=before, after=after)
