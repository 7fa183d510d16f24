"""The day folds: per user and local day, what the duration rule knows after the day's last
heartbeat (``projections.dayfold.DayFold``, as JSON text), so a heartbeat that sorts after it is
projected without reading the day's other heartbeats again.

A projection like the others: written with the day's row, rebuilt by a replay. ``state = ''``
marks a fold forgotten (the day is about to be folded again from the archive); a day without a
fold is folded from the archive. ``ReplacingMergeTree(computed_at)``, read with ``FINAL``.
"""

VERSION = 13
DESCRIPTION = "day folds: the live fold of each user's local day"
STATEMENTS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS {db}.day_folds
    (
        user_id String,
        date Date,
        state String,
        computed_at DateTime64(3, 'UTC')
    )
    ENGINE = ReplacingMergeTree(computed_at)
    PARTITION BY toYYYYMM(date)
    ORDER BY (user_id, date)
    """,
]
