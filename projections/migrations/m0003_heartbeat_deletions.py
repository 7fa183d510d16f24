"""Tombstones of deleted heartbeats: one row per (user, local date, heartbeat id) deleted.

Deleting leaves the archive as it is: the heartbeat's row stays in ``heartbeats`` and every reader
of the archive leaves out the rows named here (``projections.clickhouse.archive.not_deleted``). Rows
are only ever added, so deletions commute with the heartbeats they delete: a redelivered or
re-sent heartbeat stays deleted, and a replay in any batching gives the same tables. Keyed like
the archive, so a tombstone can only match the deleting user's own heartbeat of that local date.
``ReplacingMergeTree(deleted_at)``: a heartbeat deleted twice keeps the later deletion, whatever
the order of arrival. ``deleted_at`` is the deletion event's time, so a replay writes the same.
"""

VERSION = 3
DESCRIPTION = "tombstones of deleted heartbeats"
STATEMENTS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS {db}.heartbeat_deletions
    (
        user_id String,
        local_date Date,
        event_id String,
        deleted_at DateTime64(3, 'UTC')
    )
    ENGINE = ReplacingMergeTree(deleted_at)
    ORDER BY (user_id, local_date, event_id)
    """,
]
