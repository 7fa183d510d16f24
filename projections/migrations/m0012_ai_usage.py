"""AI token usage (docs/ai.md#tokens-and-cost): one row per model request of the assistant, with
its input, output, cache-write and cache-read tokens. Keyed (user, time, id) like the other AI
tables: redelivery and re-imports collapse, erasure goes by ``time``. The id names the request
(message and request ids), so the same request read from two files is one id; reads keep one
row per id (``LIMIT 1 BY``) even when the two copies were dated differently."""

VERSION = 12
DESCRIPTION = "AI token usage"
STATEMENTS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS {db}.ai_usage
    (
        user_id String,
        usage_id String,
        session_id String,
        model LowCardinality(String),
        message_id String,
        request_id String,
        input_tokens UInt64,
        output_tokens UInt64,
        cache_creation_tokens UInt64,
        cache_read_tokens UInt64,
        project_id Nullable(Int64),
        project_path Nullable(String),
        time DateTime64(3, 'UTC'),
        computed_at DateTime64(3, 'UTC')
    )
    ENGINE = ReplacingMergeTree(computed_at)
    PARTITION BY toYYYYMM(time)
    ORDER BY (user_id, time, usage_id)
    """,
]
