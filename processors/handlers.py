"""The batch handler shared by every runner: events in, ClickHouse projections out.

:class:`HeartbeatProjector` is the dispatcher. It cuts a batch into segments and hands each to the
projection family it belongs to (:mod:`processors.projectors`): the heartbeats family writes a
segment's archive, tombstones, day and week rows; an erasure (or an account deletion) ends the
segment before it and goes to the erasure family, so what precedes it is written first, as if it
had its own batch; the account events between deletions go to the members family. The ledger of
the batch's users is read once before the writes and again after them (see
:mod:`processors.projectors.erasure`). Writing is idempotent; the runner commits the log
position only after ``handle`` returned.

Once every write of a batch is done, the projector tells its after-batch subscribers
(:class:`processors.projectors.batches.BatchSubscriber`): live push when a publisher is given,
then whichever others it was built with. A subscriber's failure is logged, never raised: it never
fails or repeats the batch's writes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

from eventlog.port import Delivered
from live.port import LivePublisher
from processors.decoding import decode_account_events, decode_positioned_events
from processors.projectors.ai import AiProjection
from processors.projectors.batches import (
    NOTHING,
    BatchResult,
    BatchSubscriber,
    Pass,
    ProjectedBatch,
)
from processors.projectors.batches import notify as notify_subscribers
from processors.projectors.boards import BoardWatch
from processors.projectors.erasure import (
    ErasureProjection,
    fully_erased_users,
    written_users,
)
from processors.projectors.heartbeats import HeartbeatsProjection
from processors.projectors.live import LivePush
from processors.projectors.members import MembersProjection
from projections.daily import DEFAULT_TIMEOUT_S
from projections.erasures import LogPosition, fully_erased, unerased
from projections.ports import ProjectionWriter
from schemas.events import (
    ACCOUNTS_TOPIC,
    AccountDeleted,
    AccountEvent,
    AiActivityReceived,
    HeartbeatEvent,
    HeartbeatsDeleted,
    HeartbeatsReceived,
    UserDataErased,
)


class HeartbeatProjector:
    """Blocking handler (call it from a worker thread; one thread per instance, chdb-friendly).

    ``publisher`` (when active) adds live push as the first subscriber (None: replays and tools
    publish nothing); ``subscribers`` are told of each batch after it (see the module doc).
    """

    def __init__(
        self,
        store: ProjectionWriter,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        publisher: LivePublisher | None = None,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
        subscribers: Sequence[BatchSubscriber] = (),
    ) -> None:
        live = publisher if publisher is not None and publisher.active else None
        watch = BoardWatch(store, live)
        self._heartbeats = HeartbeatsProjection(store, watch, timeout_s=timeout_s)
        self._erasure = ErasureProjection(store, watch, self._heartbeats, today=today)
        self._members = MembersProjection(store, watch, today=today)
        self._ai = AiProjection(store)
        pushing: list[BatchSubscriber] = [LivePush(live)] if live is not None else []
        self._subscribers = (*pushing, *subscribers)

    def handle(
        self,
        events: Sequence[HeartbeatEvent],
        positions: Sequence[LogPosition | None] | None = None,
    ) -> BatchResult:
        """Project events of the heartbeats topic, in segments cut at each erasure.

        ``positions`` (one per event, in the same order) are where the events were read in the
        log; without them a recorded range erasure cannot tell an event came before it, and
        keeps it (:mod:`projections.erasures`). A deleted account's events are dropped anyway.
        """
        return self._told(self._heartbeat_batch(events, positions)).result

    def handle_accounts(self, events: Sequence[tuple[int, AccountEvent]]) -> int:
        """Fold ``(log_offset, event)`` pairs of the accounts topic into leaderboard members.

        The profile events are archived (secret hashes left out), then every touched account is
        folded again from all of its archived events, so redelivery, batching and replay give the
        same member rows. An ``AccountDeleted`` erases the account from every projection (its
        heartbeats too: the ``UserDataErased`` behind them may be read later, or not at all when
        appending it failed). Returns how many members were written.
        """
        return self._told(self._account_batch(events)).members

    def handle_records(self, records: Sequence[Delivered]) -> BatchResult:
        """Project a batch of records from either topic (what the in-process runner reads)."""
        heartbeat_records = [r for r in records if r.topic != ACCOUNTS_TOPIC]
        events, positions, skipped = decode_positioned_events(heartbeat_records)
        accounts, skipped_accounts = decode_account_events(
            [r for r in records if r.topic == ACCOUNTS_TOPIC]
        )
        done = self._heartbeat_batch(events, positions) + self._account_batch(accounts)
        result = dataclasses.replace(done.result, skipped_records=skipped + skipped_accounts)
        return self._told(dataclasses.replace(done, result=result)).result

    def _told(self, batch: ProjectedBatch) -> ProjectedBatch:
        """The seam: every write of ``batch`` is done; tell the subscribers."""
        notify_subscribers(self._subscribers, batch)
        return batch

    def _heartbeat_batch(
        self,
        events: Sequence[HeartbeatEvent],
        positions: Sequence[LogPosition | None] | None,
    ) -> ProjectedBatch:
        placed = positions if positions is not None else [None] * len(events)
        ledger = self._erasure.ledger({event.user_id for event in events})
        known = fully_erased_users(ledger)
        done = NOTHING
        segment: list[HeartbeatsReceived | HeartbeatsDeleted | AiActivityReceived] = []
        for event, position in zip(events, placed, strict=True):
            if isinstance(event, UserDataErased):
                done += self._segment(segment)
                done += self._erasure.erase(event, position, ledger)
                segment = []
                continue
            kept = unerased(event, position, ledger)
            if kept is not None:
                segment.append(kept)
        done += self._segment(segment)
        return done + self._erasure.erase_again(written_users(events, ledger), known)

    def _segment(
        self, segment: Sequence[HeartbeatsReceived | HeartbeatsDeleted | AiActivityReceived]
    ) -> ProjectedBatch:
        """One segment: AI activity into its tables, then every heartbeat (those the AI
        activity stands for included) into the archive, days and weeks."""
        ai = [event for event in segment if isinstance(event, AiActivityReceived)]
        rest = [event for event in segment if not isinstance(event, AiActivityReceived)]
        derived = self._ai.project(ai) if ai else []
        done = self._heartbeats.project([*rest, *derived])
        if ai:  # a pass of its own, after the heartbeats it stands for: told to live push
            done += ProjectedBatch(BatchResult(0, 0), 0, (Pass(ai=tuple(ai)),))
        return done

    def _account_batch(self, events: Sequence[tuple[int, AccountEvent]]) -> ProjectedBatch:
        ledger = self._erasure.ledger({event.user_id for _, event in events})
        known = fully_erased_users(ledger)
        done = NOTHING
        segment: list[tuple[int, AccountEvent]] = []
        kept: set[str] = set()  # the users whose member rows this pass may write
        for offset, event in events:
            # A deletion is carried out again (idempotent) when delivered again: its record may
            # have been written by a worker that stopped before removing any row.
            if fully_erased(event.user_id, ledger) and not isinstance(event, AccountDeleted):
                continue
            if isinstance(event, AccountDeleted):
                done += self._members.fold(segment)
                segment = []
                done += self._erasure.delete_account(event, offset, ledger)
            else:
                segment.append((offset, event))
                kept.add(event.user_id)
        done += self._members.fold(segment)
        return done + self._erasure.erase_again(kept - fully_erased_users(ledger), known)
