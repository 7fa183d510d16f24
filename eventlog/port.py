"""The event log port: an append-only, partitioned, durable log with consumer groups.

Two adapters implement it and pass one contract suite
(``tests/contract/test_eventlog_contract.py``):
:class:`eventlog.embedded.SqliteEventLog` (one process, a file in the data dir) and
:class:`eventlog.kafka.KafkaEventLog` (aiokafka against any Kafka-protocol broker).

Semantics every adapter keeps:

* ``append`` returns only once every record is durably stored (fsync'd / ``acks=all``). If it
  raises, the caller must treat the whole call as failed; records may or may not be stored, so
  producers make events idempotent (deterministic ids) and clients retry.
* Records with the same key land on the same partition and are read in append order.
* A ``LogReader`` of a group sees every record from the group's committed position on; a record is
  delivered again after a restart unless its offset was committed (at-least-once). Processors
  write their output first and commit after.

Erasure (GDPR account/data deletion) is not part of :class:`EventLog`: a Kafka log is immutable,
so only the embedded adapter offers it, as the separate :class:`RewritableLog` capability.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias


class LogError(Exception):
    """Base class of every error the event log raises."""


class LogUnavailable(LogError):
    """The log cannot durably store or serve records now; nothing is acknowledged. Retry."""


class PartitionsRevoked(LogError):
    """This reader no longer owns some of the partitions it was asked to commit (the group
    rebalanced and gave them to another member, or is rebalancing now). Do not retry: drop the
    batch's commit and whatever was in flight; the records are delivered again, from the last
    commit, to whichever member owns their partition now (possibly this one, which reads them
    again on its next ``fetch``)."""


class RecordRefused(LogError):
    """The log refuses this record for good (its key was erased); do not retry."""


@dataclass(frozen=True, slots=True)
class Record:
    """A record to append. ``key`` decides the partition."""

    topic: str
    key: bytes
    value: bytes


def check_records(records: Sequence[Record]) -> None:
    """Raise TypeError unless every key and value is bytes (shared by every adapter's append)."""
    for record in records:
        if not isinstance(record.key, bytes) or not isinstance(record.value, bytes):
            raise TypeError("Record.key and Record.value must be bytes")


@dataclass(frozen=True, slots=True)
class Delivered:
    """A record read back from the log, with its position."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class TopicPartition:
    topic: str
    partition: int


class LogReader(Protocol):
    """A consumer-group member reading some topics.

    ``fetch`` blocks up to ``timeout_s`` and returns at most ``max_records`` records (possibly
    none), in offset order within each partition. ``commit`` records, per partition, the offset of
    the *next* record to read; a group restarted later resumes there. ``seek_to_beginning`` moves
    this member's assigned partitions back to offset 0 (for replays). ``positions`` gives the next
    offset this member will read for each assigned partition. Methods raise :class:`LogUnavailable`
    when the log cannot be reached; ``commit`` raises :class:`PartitionsRevoked` instead when a
    partition it names is no longer assigned to this member (a rebalance moved it): retrying such
    a commit can never succeed. After a rebalance the reader carries on by itself: the next
    ``fetch`` reads the partitions it owns now from their committed offsets.
    """

    async def start(self) -> None: ...

    async def fetch(self, max_records: int, timeout_s: float) -> list[Delivered]: ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None: ...

    async def seek_to_beginning(self) -> None: ...

    async def positions(self) -> dict[TopicPartition, int]: ...

    async def close(self) -> None: ...


class EventLog(Protocol):
    """The log itself. ``start`` connects; ``close`` flushes and disconnects."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ensure_topics(self, topics: Mapping[str, int]) -> None:
        """Create missing topics with the given partition counts (existing ones are left alone)."""
        ...

    async def append(self, records: Sequence[Record]) -> None:
        """Durably append ``records``; see the module docs for the failure contract."""
        ...

    async def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        """Offset one past the last record of every partition of ``topic``."""
        ...

    def reader(self, topics: Sequence[str], group: str) -> LogReader:
        """A new, not yet started, consumer-group member for ``topics``."""
        ...


# (partition, offset) -> the record's new value, or None to delete the record
Rewrite: TypeAlias = Mapping[tuple[int, int], bytes | None]


class RewritableLog(Protocol):
    """A log whose records can be changed or deleted in place: erasing a user's data (GDPR).

    Only the embedded adapter has it; Kafka cannot rewrite a partition.
    """

    async def rewrite(
        self,
        topic: str,
        plan: Callable[[Sequence[Delivered]], Rewrite],
        *,
        key: bytes | None = None,
        refuse: bytes | None = None,
    ) -> int:
        """Change or delete records of ``topic``; return how many records were changed or deleted.

        The records of ``topic`` (only those whose key equals ``key`` when it is given; all of
        them otherwise, so mind the memory) are read in (partition, offset) order and handed to
        ``plan``, a pure, blocking function; its answer maps (partition, offset) to the record's
        new value, or to ``None`` to delete the record. The read, ``plan`` and the writes are ONE
        transaction, atomic with respect to appends: no append can land between the read and the
        write, so a record of ``key`` is either handed to ``plan`` or appended after the rewrite.
        ``plan`` holds up every append while it runs, so it must be quick.

        Deleting a record leaves a gap in the offsets, which readers simply skip: offsets are
        never reused, end offsets never move backwards (not even after a restart), and committed
        group positions stay valid. A new value keeps the record's offset, key and timestamp.
        A "new" value equal to the current one is no change and is not counted.

        If ``plan`` raises, or its answer names a (partition, offset) that was not handed to it
        (:class:`ValueError`) or holds a value that is neither bytes nor None
        (:class:`TypeError`), that exception is raised and nothing is changed.

        With ``refuse`` (a key, whether or not it is also ``key``), every later ``append`` to this
        log instance of a record with this topic and that key raises :class:`RecordRefused` and
        stores nothing of that call; an append already waiting when the rewrite runs lands before
        it and is handed to ``plan`` (when ``plan`` sees that key). The refusal is kept in memory
        only, and only once the rewrite succeeded: after a restart the application no longer
        holds credentials for an erased user, so nothing appends for them any more.
        """
        ...
