"""AI coding activity projected on the real engine (chdb in-process): its tables, the heartbeats
it stands for (counted once with hand-written time), redelivery and reordering, erasure, and the
reads behind the AI API (filters, search relevance, tool statistics)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from eventlog.port import Delivered
from processors.erasure import heartbeats_erasure
from processors.handlers import HeartbeatProjector
from projections.ai import (
    AI_CATEGORY,
    SearchQuery,
    SessionOrigin,
    TimeWindow,
    percentile,
    stamped,
)
from projections.clickhouse import ClickHouseProjectionStore
from projections.erasures import LogPosition
from schemas.ai import (
    AiRecord,
    file_activity_record,
    message_record,
    project_id_of,
    session_end_record,
    session_start_record,
    tool_call_record,
)
from schemas.events import (
    HEARTBEATS_TOPIC,
    AccountDeleted,
    AiActivityReceived,
    HeartbeatEvent,
    encode_event,
)
from tests.support import clickhouse_fixtures
from tests.support.store_inspect import rows_of_user, snapshot
from tests.support.store_rows import DAY, epoch, make_heartbeat, received

pytestmark = pytest.mark.clickhouse

chdb_url = clickhouse_fixtures.chdb_url
AI_TABLES = ("ai_projects", "ai_sessions", "ai_messages", "ai_activities", "ai_tool_calls")
PATH = "/home/ada/claude-tracker"


@pytest.fixture
def store(chdb_url: str) -> Iterator[ClickHouseProjectionStore]:
    created = ClickHouseProjectionStore(chdb_url, database=f"t_{uuid.uuid4().hex[:12]}")
    created.migrate()
    yield created
    created.close()


def ai(user: str, records: Sequence[AiRecord], event_id: str) -> AiActivityReceived:
    return AiActivityReceived(
        event_id=event_id, user_id=user, occurred_at=epoch(23), records=tuple(records)
    )


def session_log(user: str = "u1") -> list[HeartbeatEvent]:
    """A session at 10:00-10:40 with prompts, edits and tool calls; a hand-written heartbeat
    stream overlapping it (10:10-10:30) comes in between."""
    start = session_start_record(user, "s1", PATH, epoch(10), client_user="ada")
    messages = [
        message_record(user, "s1", "user", "Fix the parser bug in the tokenizer", epoch(10, 1)),
        message_record(
            user, "s1", "assistant", "The parser bug: the parser skips tokens.", epoch(10, 2)
        ),
        message_record(user, "s1", "user", "now write tests for the lexer", epoch(10, 20)),
    ]
    edits = [
        file_activity_record(
            user, "s1", f"{PATH}/parser.py", "modified", epoch(10, 5), lines_added=10
        ),
        file_activity_record(
            user, "s1", f"{PATH}/test_lexer.py", "created", epoch(10, 25), lines_added=40
        ),
    ]
    tools = [
        tool_call_record(
            user,
            "Read",
            epoch(10, 3 + i),
            session_id="s1",
            parameters=json.dumps({"file_path": f"{PATH}/parser.py"}),
            execution_time_ms=100.0 * (i + 1),
            result_status="success" if i < 3 else "error",
        )
        for i in range(4)
    ]
    hand = [
        make_heartbeat(
            f"h{i}", epoch(10, 10 + 5 * i), user_id=user, editor="VS Code", language_raw="Python"
        )
        for i in range(5)
    ]
    # As the API does: records after the start's request carry where their session runs.
    origin = SessionOrigin(PATH)
    later = [stamped(r, origin) for r in [*edits, *tools, messages[2]]]
    end = stamped(session_end_record(user, "s1", epoch(10, 40)), origin)
    return [
        ai(user, [start, *messages[:2]], "a1"),
        received(user, hand, "r1"),
        ai(user, later, "a2"),
        ai(user, [end], "a3"),
    ]


def projected(store: ClickHouseProjectionStore, runs: Sequence[Sequence[HeartbeatEvent]]) -> None:
    projector = HeartbeatProjector(store)
    offset = 0
    for batch in runs:
        positions = [LogPosition(HEARTBEATS_TOPIC, 0, offset + i) for i in range(len(batch))]
        projector.handle(batch, positions)
        offset += len(batch)


def ai_snapshot(store: ClickHouseProjectionStore) -> dict[str, list[tuple[Any, ...]]]:
    names = [*AI_TABLES, "heartbeats", "daily_stats"]
    return {table: snapshot(store, table) for table in names}


def test_ai_records_land_in_their_tables_and_count_as_ai_coding_time_once(
    store: ClickHouseProjectionStore,
) -> None:
    projected(store, [session_log()])

    [day] = store.daily_rows("u1", DAY, DAY)
    # AI records at 10:00..10:40 and hand edits 10:10..10:30: one stretch, 40 minutes, not more.
    assert day.total_seconds == pytest.approx(40 * 60, abs=1)
    assert set(day.breakdown["category"]) == {AI_CATEGORY, "coding"}
    assert sum(day.breakdown["category"].values()) == pytest.approx(day.total_seconds)
    assert "Claude Code" in day.breakdown["editor"]
    # The hand-written heartbeats are of "codetrackr": the AI's are of the session's project.
    assert set(day.breakdown["project"]) == {"claude-tracker", "codetrackr"}
    assert sum(day.breakdown["project"].values()) == pytest.approx(day.total_seconds)

    [session] = store.ai_sessions("u1")
    assert session["session_id"] == "s1"
    assert session["end_ms"] - session["start_ms"] == 40 * 60 * 1000
    assert session["project_id"] == project_id_of("u1", PATH)
    assert (session["messages"], session["activities"], session["tool_calls"]) == (3, 2, 4)
    assert (session["files"], session["lines_added"]) == (2, 50)

    [project] = store.ai_projects("u1")
    assert project["name"] == "claude-tracker"
    assert project["total_sessions"] == 1
    assert project["total_seconds"] == pytest.approx(2400)
    assert (project["files_modified"], project["lines_changed"]) == (2, 50)


def test_redelivery_reordering_and_batching_give_the_same_tables(
    chdb_url: str,
) -> None:
    log = session_log()
    runs: list[list[list[HeartbeatEvent]]] = [
        [log],
        [[event] for event in log],
        [log[:2], log[1:]],  # a crash before the commit: the second event again
        [log, log],
    ]
    snapshots = []
    for run in runs:
        fresh = ClickHouseProjectionStore(chdb_url, database=f"t_{uuid.uuid4().hex[:12]}")
        fresh.migrate()
        try:
            projected(fresh, run)
            snapshots.append(ai_snapshot(fresh))
        finally:
            fresh.close()
    assert all(s == snapshots[0] for s in snapshots[1:])
    assert all(snapshots[0][table] for table in AI_TABLES)


def test_a_range_erasure_removes_the_ai_records_and_time_of_its_range(
    store: ClickHouseProjectionStore,
) -> None:
    from tests.support.store_rows import erased

    log = session_log()
    erasure = erased("u1", epoch(10, 15), epoch(10, 50), "x1")
    projected(store, [[*log, erasure]])

    kept_messages = store.ai_messages("u1")[1]
    assert [m["content"][:3] for m in kept_messages] == ["The", "Fix"]
    assert [a["file_path"] for a in store.ai_activities("u1")] == [f"{PATH}/parser.py"]
    [session] = store.ai_sessions("u1")
    assert session["end_ms"] is None  # its end was in the range
    [day] = store.daily_rows("u1", DAY, DAY)
    assert day.total_seconds == pytest.approx(10 * 60, abs=1)  # 10:00 to the hand edit at 10:10

    # The embedded log's rewrite removes the same records: a replay of it equals the live run.
    records = [
        Delivered(HEARTBEATS_TOPIC, 0, i, b"u1", encode_event(event), 0)
        for i, event in enumerate([*log, erasure])
    ]
    plan = heartbeats_erasure(records, erasure)
    from schemas.events import decode_event

    rewritten = [
        decode_event(plan[(0, r.offset)]) if (0, r.offset) in plan else decode_event(r.value)
        for r in records
        if plan.get((0, r.offset), b"") is not None
    ]
    live = ai_snapshot(store)
    store.truncate_projections()
    projected(store, [rewritten])  # type: ignore[list-item]
    assert ai_snapshot(store) == live


def test_an_account_deletion_removes_every_ai_row(store: ClickHouseProjectionStore) -> None:
    projected(store, [session_log("u1"), session_log("u2")])
    deletion = AccountDeleted(event_id="d", user_id="u1", occurred_at=epoch(23))
    HeartbeatProjector(store).handle_accounts([(7, deletion)])

    left = rows_of_user(store, "u1")
    assert all(left[table] == 0 for table in AI_TABLES)
    assert all(rows_of_user(store, "u2")[table] > 0 for table in AI_TABLES)


def test_reads_are_scoped_to_their_user_and_filter(store: ClickHouseProjectionStore) -> None:
    projected(store, [session_log("u1"), session_log("u2")])
    pid = project_id_of("u1", PATH)

    assert store.ai_projects("u2", pid) == []  # u2's project of the same path has another id
    assert len(store.ai_sessions("u1", project_id=pid)) == 1
    assert store.ai_sessions("u1", project_id=pid + 1) == []
    after = TimeWindow(start_ms=round(epoch(11) * 1000))
    assert store.ai_sessions("u1", window=after) == []
    total, users = store.ai_messages("u1", role="user")
    assert total == 2
    assert {m["role"] for m in users} == {"user"}
    total, page = store.ai_messages("u1", limit=1, offset=1)
    assert total == 3
    assert len(page) == 1
    assert [m["project_id"] for m in store.ai_messages("u1", project_id=pid)[1]] == [pid] * 3
    created = store.ai_activities("u1", action="created")
    assert [a["file_path"] for a in created] == [f"{PATH}/test_lexer.py"]
    assert store.ai_activities("u1", file_path=f"{PATH}/parser.py", session_id="s1")
    assert store.ai_activities("u1", session_id="nope") == []
    calls = store.ai_tool_calls("u1", session_id="s1")
    assert [c["execution_time_ms"] for c in calls] == [100.0, 200.0, 300.0, 400.0]


def test_search_ranks_by_word_frequency_and_filters(store: ClickHouseProjectionStore) -> None:
    projected(store, [session_log("u1"), session_log("u2")])

    total, hits = store.ai_messages("u1", search=SearchQuery(("parser",), ()))
    assert total == 2
    # "The parser bug: the parser skips..." holds the word twice: it ranks first.
    assert hits[0]["content"].startswith("The parser bug")
    assert hits[0]["score"] > hits[1]["score"] > 0
    # A word is a token: "parsers" or "pars" do not match "parser".
    assert store.ai_messages("u1", search=SearchQuery(("pars",), ()))[0] == 0
    both = store.ai_messages("u1", search=SearchQuery(("parser", "tokenizer"), ()))[1]
    assert [m["content"] for m in both] == ["Fix the parser bug in the tokenizer"]
    phrase = store.ai_messages("u1", search=SearchQuery((), ("write tests for",)))[1]
    assert [m["content"] for m in phrase] == ["now write tests for the lexer"]
    assert store.ai_messages("u1", role="assistant", search=SearchQuery(("fix",), ()))[0] == 0
    assert store.ai_messages("u1", search=SearchQuery(("lexer",), ()))[0] == 1


def test_tool_stats_match_the_pure_percentiles(store: ClickHouseProjectionStore) -> None:
    projected(store, [session_log()])

    [read] = store.ai_tool_stats("u1")
    times = [100.0, 200.0, 300.0, 400.0]
    assert (read.tool_name, read.count, read.success_count) == ("Read", 4, 3)
    assert read.success_rate == 0.75
    assert read.p50_ms == pytest.approx(percentile(times, 0.5))
    assert read.p95_ms == pytest.approx(percentile(times, 0.95))
    assert store.ai_tool_stats("u1", project_id=1) == []
