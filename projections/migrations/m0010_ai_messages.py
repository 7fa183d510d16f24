"""AI coding activity (docs/ai.md): the messages of the sessions' conversations, searchable.

Sorted by (user, time, message id) so one user's messages of a time range are read by primary
key, and deduplicated by that key (the id is deterministic and includes the time). Search uses
two data-skipping indexes over the lower-cased text, both ClickHouse's own and available on every
server version CodeTrackr supports (25.8 in the compose file, 26.9 in chdb): a token bloom filter
(``tokenbf_v1``: ``hasToken`` for words) and a trigram bloom filter (``ngrambf_v1``: ``LIKE``
for phrases and word prefixes). Granules whose filter rules a word out are never read.
``project_id``/``project_path`` are the project the client named with the message (a hook's
working directory), if any; reads take the session's project first, then this one.
"""

VERSION = 10
DESCRIPTION = "AI conversation messages with token and n-gram indexes"
STATEMENTS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS {db}.ai_messages
    (
        user_id String,
        message_id String,
        session_id String,
        role LowCardinality(String),
        content String,
        project_id Nullable(Int64),
        project_path Nullable(String),
        time DateTime64(3, 'UTC'),
        computed_at DateTime64(3, 'UTC'),
        INDEX content_tokens lower(content) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 1,
        INDEX content_trigrams lower(content) TYPE ngrambf_v1(3, 65536, 3, 0) GRANULARITY 1
    )
    ENGINE = ReplacingMergeTree(computed_at)
    PARTITION BY toYYYYMM(time)
    ORDER BY (user_id, time, message_id)
    """,
]
