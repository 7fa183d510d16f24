"""Figure 8: conversation search over a million messages, against a plain scan of the same data.

Value: ``ClickHouseProjectionStore.ai_messages`` with a search (the AI API's
``/api/conversations/search``: every word through the token index, ranked, first page of 50),
p50 over a set of queries. Baseline, interleaved: the same matches found by a plain
``LIKE '%word%'`` scan of the user's messages with the data-skipping indexes turned off
(``use_skip_indexes = 0``), first page by time. The notes give both p99s and the data.

The data: one user's ``1,000,000 × scale`` messages of 8 to 30 words, a few hundred common words
and, as real conversations have, topic words shared by a run of about 500 consecutive messages
(a session's file and function names); queries look for topic words, alone and in pairs, and
for a phrase. chdb allows one data directory per process, so the measurement runs in a child
process (``python -m bench.ai_search``) with its own.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from pathlib import Path

from bench.child import run_child
from bench.report import Row, percentile

MESSAGES_AT_SCALE_1 = 1_000_000
QUERIES = 40
USER = "bench-user"
_COMMON = tuple(
    [
        "the",
        "a",
        "to",
        "of",
        "and",
        "in",
        "is",
        "it",
        "that",
        "for",
        "on",
        "with",
        "this",
        "be",
        "fix",
        "test",
        "add",
        "file",
        "function",
        "error",
        "parser",
        "code",
        "update",
        "change",
        "bug",
        "run",
        "build",
        "module",
        "class",
        "return",
        "value",
        "type",
        "import",
        "refactor",
        "please",
        "now",
        "can",
        "you",
        "we",
        "should",
        "make",
        "check",
        "why",
        "does",
        "not",
        "work",
        "when",
        "then",
        "also",
        "use",
    ]
)


def _load(store_url: str, database: str, messages: int) -> None:
    from projections.clickhouse import ClickHouseProjectionStore

    store = ClickHouseProjectionStore(store_url, database=database)
    store.migrate()
    words = "[" + ",".join(f"'{w}'" for w in _COMMON) + "]"
    store._command(  # bulk load in the engine: a million rows through Python would dominate
        f"INSERT INTO `{database}`.ai_messages (user_id, message_id, session_id, role, content,"
        " project_id, project_path, time, computed_at)"
        f" SELECT '{USER}', toString(number), concat('s', toString(intDiv(number, 200))),"
        " if(number % 2 = 0, 'user', 'assistant'),"
        " arrayStringConcat(arrayConcat("
        f"  arrayMap(i -> {words}[1 + (cityHash64(number, i) % {len(_COMMON)})],"
        "   range(8 + number % 20)),"
        "  [concat('topic', toString(intDiv(number, 500))),"
        "   concat('name', toString(intDiv(number, 500) * 7 + number % 3))]), ' '),"
        " NULL, NULL,"
        " fromUnixTimestamp64Milli(toInt64(1700000000000 + number * 60000), 'UTC'),"
        " fromUnixTimestamp64Milli(toInt64(1700000000000), 'UTC')"
        f" FROM numbers({messages})"
    )
    store.close()


def _measure(store_url: str, database: str, messages: int, queries: int) -> dict[str, object]:
    from projections.ai import SearchQuery
    from projections.clickhouse import ClickHouseProjectionStore

    store = ClickHouseProjectionStore(store_url, database=database)
    topics = messages // 500
    rng = random.Random(8)
    searches: list[SearchQuery] = []
    for index in range(queries):
        topic = rng.randrange(topics)
        if index % 3 == 0:
            searches.append(SearchQuery((f"topic{topic}",), ()))
        elif index % 3 == 1:
            searches.append(SearchQuery((f"topic{topic}", f"name{topic * 7 + 1}"), ()))
        else:
            searches.append(
                SearchQuery((f"topic{topic}", f"name{topic * 7 + 2}"), (f"topic{topic} name",))
            )
    indexed: list[float] = []
    scanned: list[float] = []
    hits: list[int] = []
    for search in [*searches[:3], *searches]:  # the first three warm the engine up
        started = time.perf_counter()
        total, _ = store.ai_messages(USER, search=search, limit=50)
        indexed.append(time.perf_counter() - started)
        # Words are whole words (the messages separate them by spaces), phrases substrings.
        conditions = " AND ".join(
            [f"concat(' ', lower(content), ' ') LIKE '% {word} %'" for word in search.words]
            + [f"lower(content) LIKE '%{phrase}%'" for phrase in search.phrases]
        )
        started = time.perf_counter()
        with store._edge("scan"):
            rows = store._query(
                f"SELECT message_id, content, count() OVER () FROM `{database}`.ai_messages FINAL"
                f" WHERE user_id = '{USER}' AND {conditions}"
                " ORDER BY time DESC LIMIT 50 SETTINGS use_skip_indexes = 0"
            )
        scanned.append(time.perf_counter() - started)
        hits.append(total)
        if total != (int(rows[0][2]) if rows else 0):
            raise RuntimeError(f"search and scan disagree on {search}: {total} vs {len(rows)}")
    store.close()
    return {"indexed": indexed[3:], "scanned": scanned[3:], "hits": hits[3:]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--queries", type=int, default=QUERIES)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    url = f"chdb://{args.dir}"
    database = f"bench_{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    _load(url, database, args.messages)
    loaded = time.perf_counter() - started
    result = _measure(url, database, args.messages, args.queries)
    result["load_s"] = loaded
    print(json.dumps(result))


async def figure_ai_search(scale: float) -> list[Row]:
    messages = max(10_000, round(MESSAGES_AT_SCALE_1 * scale))
    result = await run_child(
        "bench.ai_search", ["--messages", str(messages)], what="search", dir_name="clickhouse"
    )
    indexed, scanned = result["indexed"], result["scanned"]
    hits = sorted(result["hits"])
    return [
        Row(
            mode="embedded",
            figure=f"9 conversation search, {messages:,} messages of one user, p50",
            unit="s",
            value=percentile(indexed, 50),
            baseline=percentile(scanned, 50),
            baseline_label="the same matches by a LIKE scan without skip indexes, p50",
            notes=[
                f"search p99 {percentile(indexed, 99) * 1000:.0f} ms, scan p99 "
                f"{percentile(scanned, 99) * 1000:.0f} ms; {len(indexed)} queries (topic words "
                f"alone, in pairs, with a phrase), {hits[0]}-{hits[-1]} matches each, first "
                f"page of 50 ranked; loading the messages took {result['load_s']:.0f} s"
            ],
        )
    ]


if __name__ == "__main__":
    main()
