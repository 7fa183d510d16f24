"""What a projected batch produced, and the seam where subscribers hear of it.

A batch is written in passes (a segment's days and weeks, an erasure, a members fold); each
:class:`Pass` keeps what it changed. Once every pass of a batch is written, the projector hands
the :class:`ProjectedBatch` to its :class:`BatchSubscriber`\\s (live push now, plugin hooks next).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from processors.projectors.boards import NO_BOARDS, Boards
from projections.daily import DailyRow
from schemas.events import AiActivityReceived, UserDataErased
from schemas.heartbeat import Heartbeat

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatchResult:
    heartbeats: int
    days: int
    skipped_records: int = 0
    deleted_ids: int = 0
    # Erasures projected: on the embedded log, the runner then erases the records themselves.
    erasures: tuple[UserDataErased, ...] = ()

    def __add__(self, other: BatchResult) -> BatchResult:
        return BatchResult(
            self.heartbeats + other.heartbeats,
            self.days + other.days,
            self.skipped_records + other.skipped_records,
            self.deleted_ids + other.deleted_ids,
            self.erasures + other.erasures,
        )


@dataclass(frozen=True, slots=True)
class Pass:
    """One write step of a batch: the heartbeats it archived, the day rows it recomputed (an
    erasure's emptied days included), the boards its audience saw before and after it
    (:class:`processors.projectors.boards.BoardWatch`; empty when nobody listens), and the AI
    activity events whose records it wrote."""

    heartbeats: tuple[Heartbeat, ...] = ()
    rows: tuple[DailyRow, ...] = ()
    before: Boards = NO_BOARDS
    after: Boards = NO_BOARDS
    ai: tuple[AiActivityReceived, ...] = ()  # AI activity written to its tables


@dataclass(frozen=True, slots=True)
class ProjectedBatch:
    """A batch once written: its counts, the member rows written, and its passes in order."""

    result: BatchResult
    members: int = 0
    passes: tuple[Pass, ...] = ()

    def __add__(self, other: ProjectedBatch) -> ProjectedBatch:
        return ProjectedBatch(
            self.result + other.result, self.members + other.members, self.passes + other.passes
        )


NOTHING = ProjectedBatch(BatchResult(0, 0))


class BatchSubscriber(Protocol):
    """Told of each batch once the projector has written it.

    When: once per call of ``HeartbeatProjector.handle``, ``handle_accounts`` or
    ``handle_records``, after every write of the batch and before the call returns, so before
    the runner commits the batch's log position. A batch the log delivers again (a crash
    before that commit, a rebalance) is told again: delivery to subscribers is at least once, and
    a subscriber must tolerate seeing a batch twice. A batch whose writes failed is not told;
    its retry is.

    Where: on the projector's thread (blocking; the store's one thread, so keep it short and
    never call the store from it: the writes are done).

    Errors: ``after_batch`` should not raise. If it does, the error is logged with its traceback
    and swallowed (:func:`notify`): the batch's writes stand, it is not retried nor handled
    again because of a subscriber, and the other subscribers are still told.
    """

    def after_batch(self, batch: ProjectedBatch) -> None: ...


def notify(subscribers: Sequence[BatchSubscriber], batch: ProjectedBatch) -> None:
    """Tell each subscriber of ``batch``, in order; a failure never reaches the write path."""
    for subscriber in subscribers:
        try:
            subscriber.after_batch(batch)
        except Exception:
            _log.exception("after-batch subscriber %r failed; the batch stands", subscriber)
