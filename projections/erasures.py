"""Pure rules of the erasure ledger: which events an erasure recorded earlier still removes.

An erasure (:class:`schemas.events.UserDataErased`, or ``AccountDeleted`` on the accounts topic)
is recorded in the ``erasures`` table (migration m0006) when it is projected, with the position
of its record in the log. Every later projection write consults the ledger, so what an erasure
removed stays removed whatever is delivered again: after a restart, a rebalance, a redelivery or
a replay (the ledger is not emptied by ``truncate_projections``).

The rules keep the log's order, as the projector does within one run:

* a **whole-account** erasure removes every event of the user, wherever it is in the log (a
  request authenticated just before the deletion and appended after it included);
* a **range** erasure removes the heartbeats of its range carried by records *before* it in the
  log, and keeps those of records after it (the user sent them again, later).

"Before" is decided by log position. A user's records are keyed by the user id, so they all sit
on one partition of the heartbeats topic, in order, and their offsets never change: Kafka never
renumbers, and the embedded log's rewrite keeps every surviving record's offset. So a record is
before an erasure when it is on the same topic and partition at a lower offset. A record whose
position is unknown (events handed to the projector without one), or on another partition (only
if the topic's partition count was changed, which moves keys), cannot be ordered against the
erasure and is kept, as it would be if it came after: a range erasure never removes activity it
cannot prove came first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from schemas.events import (
    AiActivityReceived,
    HeartbeatsDeleted,
    HeartbeatsReceived,
    UserDataErased,
)
from schemas.heartbeat import Heartbeat

__all__ = ["ErasureRecord", "LogPosition", "erasure_record", "fully_erased", "unerased"]


@dataclass(frozen=True, slots=True, order=True)
class LogPosition:
    """Where a record sits in the log: its topic, partition and offset."""

    topic: str
    partition: int
    offset: int

    def before(self, other: LogPosition) -> bool:
        """Whether this record certainly precedes ``other`` (same partition, lower offset)."""
        return (
            self.topic == other.topic
            and self.partition == other.partition
            and self.offset < other.offset
        )


@dataclass(frozen=True, slots=True)
class ErasureRecord:
    """One erasure as the ledger keeps it. ``start`` and ``end`` both ``None``: the whole
    account. ``position`` is the erasure's own record (``None`` when projected without one)."""

    user_id: str
    erasure_id: str
    start: float | None
    end: float | None
    position: LogPosition | None
    occurred_at: float

    @property
    def everything(self) -> bool:
        return self.start is None and self.end is None

    def removes(self, time: float, position: LogPosition | None) -> bool:
        """Whether a heartbeat of the user at ``time``, carried by a record at ``position``, is
        erased by this erasure (see the module docs)."""
        if self.everything:
            return True
        if position is None or self.position is None or not position.before(self.position):
            return False
        return (self.start is None or time >= self.start) and (self.end is None or time < self.end)


def erasure_record(erasure: UserDataErased, position: LogPosition | None) -> ErasureRecord:
    """The ledger's record of ``erasure``, read at ``position``."""
    return ErasureRecord(
        user_id=erasure.user_id,
        erasure_id=erasure.event_id,
        start=erasure.start,
        end=erasure.end,
        position=position,
        occurred_at=erasure.occurred_at,
    )


def fully_erased(user_id: str, ledger: Mapping[str, Sequence[ErasureRecord]]) -> bool:
    """Whether the user's account was erased whole."""
    return any(record.everything for record in ledger.get(user_id, ()))


Unerased = HeartbeatsReceived | HeartbeatsDeleted | AiActivityReceived


def unerased(
    event: Unerased,
    position: LogPosition | None,
    ledger: Mapping[str, Sequence[ErasureRecord]],
) -> Unerased | None:
    """What of ``event`` (read at ``position``) the recorded erasures leave: the event itself,
    the event without its erased heartbeats (or AI records), or ``None`` when nothing is left.

    ``ledger`` holds, per user, the erasures recorded so far (only the event's user is looked at).
    """
    records = ledger.get(event.user_id, ())
    if not records:
        return event
    if any(record.everything for record in records):
        return None
    if isinstance(event, HeartbeatsDeleted):
        return event  # tombstones hide, they never bring anything back
    if isinstance(event, AiActivityReceived):
        # AI records are erased one by one by their own time, as heartbeats are.
        left = tuple(
            item
            for item in event.records
            if not any(record.removes(item.time, position) for record in records)
        )
        if len(left) == len(event.records):
            return event
        return event.model_copy(update={"records": left}) if left else None
    kept = _kept(event.heartbeats, position, records)
    if len(kept) == len(event.heartbeats):
        return event
    return event.model_copy(update={"heartbeats": kept}) if kept else None


def _kept(
    heartbeats: Iterable[Heartbeat], position: LogPosition | None, records: Sequence[ErasureRecord]
) -> tuple[Heartbeat, ...]:
    return tuple(
        hb for hb in heartbeats if not any(record.removes(hb.time, position) for record in records)
    )
