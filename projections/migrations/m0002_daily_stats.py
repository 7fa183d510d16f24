"""Daily stats: one row per (user, local day), replaced whole on every recompute.

The version column ``computed_at`` makes the latest recompute win, and because a recompute
writes the whole row (every breakdown map), values that vanished from a day do not linger, as
they would with a row per (day, value). Readers must use ``FINAL`` or aggregate. One
``Map(String, Float64)`` per dimension of ``projections.durations.DIMENSIONS``.
"""

VERSION = 2
DESCRIPTION = "daily stats per user and local day"
STATEMENTS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS {db}.daily_stats
    (
        user_id String,
        date Date,
        timezone LowCardinality(String),
        total_seconds Float64,
        heartbeat_count UInt32,
        first_time DateTime64(3, 'UTC'),
        last_time DateTime64(3, 'UTC'),
        projects Map(String, Float64),
        languages Map(String, Float64),
        editors Map(String, Float64),
        operating_systems Map(String, Float64),
        machines Map(String, Float64),
        branches Map(String, Float64),
        categories Map(String, Float64),
        entities Map(String, Float64),
        computed_at DateTime64(3, 'UTC')
    )
    ENGINE = ReplacingMergeTree(computed_at)
    PARTITION BY toYYYYMM(date)
    ORDER BY (user_id, date)
    """,
]
