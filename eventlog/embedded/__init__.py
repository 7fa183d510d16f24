"""The embedded event log: one SQLite file, durable across crashes, for a single process.

Layout of the file (WAL journal, ``synchronous=FULL``):

* ``topics(name, partitions)``: partition count of every topic, fixed when the topic is created.
* ``records(topic, partition, record_offset, key, value, timestamp_ms)``: the log itself, with
  the index ``records_by_key(topic, key)`` so one key's records are found without scanning the
  topic (for erasure; a file from before the index gets it, once, at ``start``).
* ``group_offsets(group_name, topic, partition, next_offset)``: committed consumer positions, in
  the same file so a commit is exactly as durable as the records it refers to.
* ``partition_ends(topic, partition, next_offset)``: written only when ``rewrite`` deletes
  records: the partition's next offset at that moment. The end of a partition is the larger of
  this and ``MAX(record_offset) + 1``, so deleting a partition's last record never lets its
  offset be handed out again nor its end offset move backwards.

Erasure: unlike Kafka, this log can change or delete records in place
(:meth:`SqliteEventLog.rewrite`, the :class:`eventlog.port.RewritableLog` capability), which is
how a user's data is erased for good. A deleted record leaves a gap in its partition's offsets;
readers skip it like any offset with no row, and a reader whose partition has nothing left but
erased records moves to the partition's end (as a Kafka consumer moves past compacted offsets),
so "read up to the end" still terminates. The writer runs with ``secure_delete=ON``, so the
erased bytes are zeroed in the database file, not left in free pages, and checkpoints the WAL
after every rewrite (``TRUNCATE``), so older page images there do not keep them either (best
effort: a checkpoint that a long read holds back completes with the next ones).

Partitioning: ``zlib.crc32(key) % partitions``. CRC-32 is stable across processes, Python versions
and platforms (unlike :func:`hash`), which is all the port asks for. It is not Kafka's murmur2, so
a key may land on a different partition number here than in :class:`eventlog.kafka.KafkaEventLog`;
nothing may depend on partition numbers across adapters.

The package, by concern:

* :mod:`eventlog.embedded.sqlite_file`: the file (schema, connections, permissions, the writer's
  lock) and the partitioning;
* :mod:`eventlog.embedded.writer`: what the writer thread works with (ops, its in-memory state,
  the signal that wakes readers);
* :mod:`eventlog.embedded.log`: :class:`SqliteEventLog`, its writer thread and group commit;
* :mod:`eventlog.embedded.erasure`: what one ``rewrite`` does inside the writer's transaction;
* :mod:`eventlog.embedded.reader`: readers and ``end_offsets``.
"""

from eventlog.embedded.log import SqliteEventLog
from eventlog.embedded.sqlite_file import partition_for

__all__ = ["SqliteEventLog", "partition_for"]
