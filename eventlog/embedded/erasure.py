"""Erasure in the embedded log: what one :meth:`SqliteEventLog.rewrite
<eventlog.embedded.log.SqliteEventLog.rewrite>` does inside the writer's transaction.

Blocking: runs on the writer thread, inside the group's transaction (so ``plan`` holds up every
append while it runs). Errors: a ``plan`` that raises, or answers with anything but records handed
to it and ``bytes``/``None`` values, fails this rewrite alone (:class:`Rejected`) before anything
is written; a :class:`sqlite3.Error` fails the whole group.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from eventlog.embedded.writer import Rejected, WriterState
from eventlog.port import Delivered, Rewrite


def apply_rewrite(
    conn: sqlite3.Connection,
    state: WriterState,
    topic: str,
    plan: Callable[[Sequence[Delivered]], Rewrite],
    *,
    key: bytes | None,
    refuse: bytes | None,
) -> int:
    """Change and delete what ``plan`` answers for the records of ``topic`` (of ``key`` only,
    when given), keep the ends of the partitions it deleted from, and refuse ``refuse`` from the
    commit of this group on; returns how many records changed."""
    records = records_of(conn, topic, key)
    try:
        edits = checked_plan(plan(records), records)
    except Exception as exc:
        # Nothing is written yet: fail this rewrite only, not the appends it shares with.
        raise Rejected(exc) from exc
    updates = [
        (value, topic, partition, offset)
        for (partition, offset), value in edits.items()
        if value is not None
    ]
    deletes = [
        (topic, partition, offset) for (partition, offset), value in edits.items() if value is None
    ]
    conn.executemany(
        "UPDATE records SET value = ? WHERE topic = ? AND partition = ? AND record_offset = ?",
        updates,
    )
    conn.executemany(
        "DELETE FROM records WHERE topic = ? AND partition = ? AND record_offset = ?",
        deletes,
    )
    # Remember where every partition we deleted from ends, in case that was its tail.
    ends = sorted({(topic, partition) for _, partition, _ in deletes})
    conn.executemany(
        "INSERT INTO partition_ends (topic, partition, next_offset) VALUES (?, ?, ?)"
        " ON CONFLICT (topic, partition)"
        " DO UPDATE SET next_offset = MAX(next_offset, excluded.next_offset)",
        [(*tp, state.next_offsets[tp]) for tp in ends],
    )
    if refuse is not None:
        state.refusing.add((topic, refuse))
    return len(updates) + len(deletes)


def records_of(conn: sqlite3.Connection, topic: str, key: bytes | None) -> list[Delivered]:
    """The records of ``topic`` (of ``key`` only, when given) in (partition, offset) order."""
    if key is None:
        rows = conn.execute(
            "SELECT partition, record_offset, key, value, timestamp_ms FROM records"
            " WHERE topic = ? ORDER BY partition, record_offset",
            (topic,),
        )
    else:
        rows = conn.execute(
            "SELECT partition, record_offset, key, value, timestamp_ms FROM records"
            " INDEXED BY records_by_key WHERE topic = ? AND key = ?"
            " ORDER BY partition, record_offset",
            (topic, key),
        )
    return [
        Delivered(topic, partition, offset, record_key, value, timestamp_ms)
        for partition, offset, record_key, value, timestamp_ms in rows
    ]


def checked_plan(
    answer: Rewrite, records: Sequence[Delivered]
) -> dict[tuple[int, int], bytes | None]:
    """The real changes in ``plan``'s answer: raises unless it only names records handed to it.

    A new value equal to the current one is dropped (it is no change and is not counted).
    """
    current = {(record.partition, record.offset): record.value for record in records}
    edits: dict[tuple[int, int], bytes | None] = {}
    for position, value in answer.items():
        if position not in current:
            raise ValueError(f"plan names {position}, which is not a record handed to it")
        if value is not None and not isinstance(value, bytes):
            raise TypeError(f"plan's new value for {position} is not bytes or None")
        if value != current[position]:
            edits[position] = value
    return edits
