"""Weekly leaderboards: per-user weekly totals, the account events they need, and the members.

``weekly_stats``: one row per (ISO week, user), the sum of that week's ``daily_stats`` rows,
replaced whole on every recompute (``computed_at``); keyed by week first, so one week's board is
one range of the sorting key. ``account_events``: the profile events of the accounts topic
(``AccountCreated`` without its secret hash, ``ProfileUpdated``), keyed by user and log offset,
so an account can be folded again from its own events. ``leaderboard_members``: that fold, one
row per account; ``version`` is the log offset of the newest event folded in, so a replay writes
the very same rows.
"""

VERSION = 5
DESCRIPTION = "weekly leaderboards"
STATEMENTS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS {db}.weekly_stats
    (
        week Date,
        user_id String,
        total_seconds Float64,
        languages Map(String, Float64),
        editors Map(String, Float64),
        operating_systems Map(String, Float64),
        computed_at DateTime64(3, 'UTC')
    )
    ENGINE = ReplacingMergeTree(computed_at)
    PARTITION BY toYear(week)
    ORDER BY (week, user_id)
    """,
    """
    CREATE TABLE IF NOT EXISTS {db}.account_events
    (
        user_id String,
        log_offset UInt64,
        event String
    )
    ENGINE = ReplacingMergeTree
    ORDER BY (user_id, log_offset)
    """,
    """
    CREATE TABLE IF NOT EXISTS {db}.leaderboard_members
    (
        user_id String,
        username String,
        eligible Bool,
        country LowCardinality(String),
        available_for_hire Bool,
        version UInt64
    )
    ENGINE = ReplacingMergeTree(version)
    ORDER BY user_id
    """,
]
