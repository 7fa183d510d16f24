"""The raw heartbeat archive: every canonical Heartbeat field, deduplicated by event id.

``ReplacingMergeTree(received_at)`` keyed by ``(user_id, local_date, event_id)``: copies of one
event (redeliveries, client resends) collapse to the copy received last. ClickHouse only
collapses copies that share the whole sorting key, so two copies of one event sent with
different ``timezone`` fields that date it to different local days stay apart (they then count
on both days); readers must use ``FINAL`` or aggregate. ``local_date`` is the date of ``time`` in
the heartbeat's own timezone, which is what lets a day's heartbeats be read by primary key.
Partitioned by month so old months can be dropped or re-imported alone.
"""

VERSION = 1
DESCRIPTION = "raw heartbeat archive"
STATEMENTS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS {db}.heartbeats
    (
        schema_version UInt8,
        event_id String,
        user_id String,
        time DateTime64(3, 'UTC'),
        entity String,
        type LowCardinality(String),
        category LowCardinality(String),
        project Nullable(String),
        project_root_count Nullable(Int64),
        branch Nullable(String),
        language LowCardinality(Nullable(String)),
        dependencies Array(String),
        lines Nullable(Int64),
        line_additions Nullable(Int64),
        line_deletions Nullable(Int64),
        lineno Nullable(Int64),
        cursorpos Nullable(Int64),
        is_write Bool,
        duration Float64,
        commit Nullable(String),
        workspace_root Nullable(String),
        package_path Nullable(String),
        editor LowCardinality(Nullable(String)),
        os LowCardinality(Nullable(String)),
        machine Nullable(String),
        ai_line_changes Nullable(Int64),
        human_line_changes Nullable(Int64),
        timezone LowCardinality(String),
        received_at DateTime64(3, 'UTC'),
        source LowCardinality(String),
        user_agent Nullable(String),
        local_date Date
    )
    ENGINE = ReplacingMergeTree(received_at)
    PARTITION BY toYYYYMM(local_date)
    ORDER BY (user_id, local_date, event_id)
    """,
]
