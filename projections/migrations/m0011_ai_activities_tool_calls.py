"""AI coding activity (docs/ai.md): the files the assistant created, modified or deleted, and its
tool calls. One row per record, keyed (user, time, id) like the messages: redelivery and
re-imports collapse, reads of a time range go by primary key, erasure goes by ``time``."""

VERSION = 11
DESCRIPTION = "AI file activities and tool calls"
STATEMENTS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS {db}.ai_activities
    (
        user_id String,
        activity_id String,
        session_id String,
        file_path String,
        action LowCardinality(String),
        lines_added Int64,
        lines_removed Int64,
        project_id Nullable(Int64),
        project_path Nullable(String),
        time DateTime64(3, 'UTC'),
        computed_at DateTime64(3, 'UTC')
    )
    ENGINE = ReplacingMergeTree(computed_at)
    PARTITION BY toYYYYMM(time)
    ORDER BY (user_id, time, activity_id)
    """,
    """
    CREATE TABLE IF NOT EXISTS {db}.ai_tool_calls
    (
        user_id String,
        call_id String,
        session_id String,
        tool_name LowCardinality(String),
        parameters String,
        result_status LowCardinality(String),
        execution_time_ms Nullable(Float64),
        project_id Nullable(Int64),
        project_path Nullable(String),
        time DateTime64(3, 'UTC'),
        computed_at DateTime64(3, 'UTC')
    )
    ENGINE = ReplacingMergeTree(computed_at)
    PARTITION BY toYYYYMM(time)
    ORDER BY (user_id, time, call_id)
    """,
]
