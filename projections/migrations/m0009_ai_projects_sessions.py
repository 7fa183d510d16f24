"""AI coding activity (docs/ai.md): the projects and the sessions' starts and ends.

One row per record of the log (``schemas.ai``), never updated: a start and an end of one session
are two rows, and reads aggregate them (the earliest start, the latest end). Rows are keyed by
what makes a record the same activity, so a redelivered or re-imported record collapses
(``ReplacingMergeTree``, read with ``FINAL`` or through aggregates duplicates cannot change), and
a time-range erasure removes rows by their own ``time``, as the log's rewrite removes records: a
replay after an erasure ends where the live run did.
"""

VERSION = 9
DESCRIPTION = "AI projects and sessions"
STATEMENTS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS {db}.ai_projects
    (
        user_id String,
        project_id Int64,
        record_id String,
        path String,
        name String,
        time DateTime64(3, 'UTC'),
        computed_at DateTime64(3, 'UTC')
    )
    ENGINE = ReplacingMergeTree(computed_at)
    ORDER BY (user_id, project_id, record_id)
    """,
    """
    CREATE TABLE IF NOT EXISTS {db}.ai_sessions
    (
        user_id String,
        session_id String,
        kind LowCardinality(String),
        record_id String,
        time DateTime64(3, 'UTC'),
        project_id Nullable(Int64),
        project_path Nullable(String),
        client_user Nullable(String),
        assistant LowCardinality(String),
        computed_at DateTime64(3, 'UTC')
    )
    ENGINE = ReplacingMergeTree(computed_at)
    ORDER BY (user_id, session_id, kind, record_id)
    """,
]
