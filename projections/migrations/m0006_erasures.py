"""The erasure ledger: one row per erasure projected, kept across replays.

A ``UserDataErased`` (a range, or everything when the account was deleted) and an
``AccountDeleted`` are recorded here when projected, with the position of their record in the
log (``log_topic``, ``log_partition``, ``log_offset``; ``''``/-1/-1 when projected without one)
and when that happened. Every projection write consults it (``projections.erasures``), so a
heartbeat of a deleted account, or a heartbeat of an erased range carried by a record from before
the erasure, is never archived again: not after a restart, a rebalance, a redelivery, nor a replay
(``truncate_projections`` leaves this table alone, as it leaves ``schema_migrations``).

``range_start``/``range_end`` are the event's epoch seconds (both NULL: the whole account), as
floats so the rule compares exactly what the event says. Keyed by (user, erasure); rows are only
ever added (a redelivered erasure is not written twice). It holds the erased user's id and nothing
else of theirs: that id is what keeps the account erased.
"""

VERSION = 6
DESCRIPTION = "erasure ledger"
STATEMENTS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS {db}.erasures
    (
        user_id String,
        erasure_id String,
        range_start Nullable(Float64),
        range_end Nullable(Float64),
        log_topic String,
        log_partition Int32,
        log_offset Int64,
        occurred_at DateTime64(3, 'UTC'),
        projected_at DateTime64(3, 'UTC')
    )
    ENGINE = ReplacingMergeTree
    ORDER BY (user_id, erasure_id)
    """,
]
