"""The records a Claude Code transcript or a Codex rollout holds (api.rules.ai_transcripts)."""

from __future__ import annotations

import json
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from api.rules.ai_transcripts import plan_transcript
from schemas.ai import (
    AiFileActivity,
    AiMessage,
    AiSessionEnd,
    AiSessionStart,
    AiToolCall,
    AiUsage,
)
from tests.support.transcripts import (
    T0,
    ClaudeSession,
    codex_rollout,
    text_block,
    tool_block,
    ts,
    usage,
)

NOW = T0.timestamp() + 86_400
SONNET = "claude-sonnet-4-20250514"


def claude_session() -> ClaudeSession:
    s = ClaudeSession("sess-1", "/home/ada/tracker")
    s.prompt(0, "fix the parser bug")
    s.answer(
        1,
        "msg_1",
        "req_1",
        SONNET,
        usage(10, 200, 3000, 500),
        [
            text_block("Let me edit it."),
            tool_block(
                "toolu_1",
                "Edit",
                file_path="/home/ada/tracker/p.py",
                old_string="a",
                new_string="b\nc",
            ),
            tool_block("toolu_2", "Read", file_path="/home/ada/tracker/missing.py"),
        ],
    )
    s.result(1.5, "toolu_1")
    s.result(1.6, "toolu_2", error=True)
    s.answer(2, "msg_2", "req_2", SONNET, usage(5, 40), [text_block("Fixed.")])
    return s


def kinds(records: list) -> Counter[str]:  # type: ignore[type-arg]
    return Counter(r.kind for r in records)


def test_a_claude_transcript_becomes_a_session_its_messages_tools_files_and_usage() -> None:
    plan = plan_transcript("u1", "claude", claude_session().text(), now=NOW)
    assert plan.skipped == []
    assert kinds(plan.records) == {
        "session_start": 1,
        "session_end": 1,
        "message": 3,  # the prompt, the two answers (a tool result is no message)
        "tool_call": 2,
        "file_activity": 1,
        "usage": 4,  # one per line: the three lines of the first answer share an id
    }
    [start] = [r for r in plan.records if isinstance(r, AiSessionStart)]
    [end] = [r for r in plan.records if isinstance(r, AiSessionEnd)]
    assert (start.session_id, start.project_path, start.time) == (
        "sess-1",
        "/home/ada/tracker",
        T0.timestamp(),
    )
    assert end.time == T0.timestamp() + 120
    tools = {r.tool_name: r for r in plan.records if isinstance(r, AiToolCall)}
    assert tools["Edit"].result_status == "success"
    assert tools["Read"].result_status == "error"
    assert tools["Edit"].execution_time_ms == 30_000
    assert json.loads(tools["Edit"].parameters)["file_path"] == "/home/ada/tracker/p.py"
    [change] = [r for r in plan.records if isinstance(r, AiFileActivity)]
    assert (change.file_path, change.action, change.lines_added, change.lines_removed) == (
        "/home/ada/tracker/p.py",
        "modified",
        2,
        1,
    )
    answers = [
        r.content for r in plan.records if isinstance(r, AiMessage) and r.role == "assistant"
    ]
    assert answers == ["Let me edit it.", "Fixed."]
    usages = [r for r in plan.records if isinstance(r, AiUsage)]
    assert len({u.id for u in usages}) == 2  # the answer split in lines is one request
    first = next(u for u in usages if u.message_id == "msg_1")
    assert (first.model, first.request_id, first.input_tokens, first.output_tokens) == (
        SONNET,
        "req_1",
        10,
        200,
    )
    assert (first.cache_creation_tokens, first.cache_read_tokens) == (3000, 500)
    assert first.project_path == "/home/ada/tracker"


def test_ids_are_deterministic_and_the_same_request_in_another_file_is_the_same_record() -> None:
    once = plan_transcript("u1", "claude", claude_session().text(), now=NOW)
    again = plan_transcript("u1", "claude", claude_session().text(), now=NOW + 3600)
    assert [r.id for r in once.records] == [r.id for r in again.records]
    # A resumed session copies the history into a new file: its requests keep their ids.
    resumed = ClaudeSession("sess-2", "/home/ada/tracker")
    resumed.answer(2, "msg_2", "req_2", SONNET, usage(5, 40), [text_block("Fixed.")])
    copied = plan_transcript("u1", "claude", resumed.text(), now=NOW)
    usage_ids = {r.id for r in once.records if isinstance(r, AiUsage)}
    assert {r.id for r in copied.records if isinstance(r, AiUsage)} <= usage_ids
    # Another user's records are other records.
    theirs = plan_transcript("u2", "claude", claude_session().text(), now=NOW)
    assert not {r.id for r in theirs.records} & {r.id for r in once.records}


def test_malformed_lines_are_skipped_and_named_and_the_rest_is_imported() -> None:
    good = claude_session().text().splitlines()
    bad = [
        "{not json",
        "[1, 2]",
        json.dumps({"type": "assistant", "sessionId": "sess-1", "message": {"content": []}}),
        json.dumps({"type": "user", "timestamp": ts(3), "message": {"content": "no session"}}),
        json.dumps(
            {
                "type": "assistant",
                "sessionId": "sess-1",
                "timestamp": ts(4),
                "message": {"id": "m", "content": [], "usage": {"input_tokens": "many"}},
            }
        ),
        json.dumps(
            {
                "type": "user",
                "sessionId": "sess-1",
                "timestamp": "1999-01-01T00:00:00Z",
                "message": {"content": "too old"},
            }
        ),
    ]
    text = "\n".join([good[0], *bad, *good[1:]]) + "\n"
    plan = plan_transcript("u1", "claude", text, now=NOW, first_line=10)
    assert [line for line, _ in plan.skipped] == [11, 12, 13, 14, 15, 16]
    reasons = dict(plan.skipped)
    assert reasons[11] == "not JSON"
    assert reasons[12] == "not a JSON object"
    assert reasons[13] == "timestamp is required"
    assert reasons[14] == "sessionId is required"
    assert "input_tokens" in reasons[15]
    assert "2000" in reasons[16]
    assert kinds(plan.records)["usage"] == 4  # the good lines are all there


def test_subagent_lines_count_tokens_and_tools_but_are_not_the_conversation() -> None:
    s = ClaudeSession("sess-1", "/home/ada/tracker")
    s.prompt(0, "Search the repo for parsers", isSidechain=True)
    s.answer(
        1,
        "msg_9",
        "req_9",
        "claude-haiku-4-5-20251001",
        usage(100, 10),
        [text_block("found 3"), tool_block("toolu_9", "Grep", pattern="parse")],
        isSidechain=True,
    )
    plan = plan_transcript("u1", "claude", s.text(), now=NOW)
    assert kinds(plan.records)["message"] == 0
    assert kinds(plan.records)["usage"] == 2
    [call] = [r for r in plan.records if isinstance(r, AiToolCall)]
    assert call.result_status == "no_result"  # the log has no result for it


def test_a_codex_rollout_counts_each_requests_growth_of_the_running_total() -> None:
    text = codex_rollout("0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "/home/ada/api")
    plan = plan_transcript("u1", "codex", text, now=NOW)
    assert [why for _, why in plan.skipped] == ["not JSON"]
    usages = [r for r in plan.records if isinstance(r, AiUsage)]
    assert [(u.input_tokens, u.cache_read_tokens, u.output_tokens) for u in usages] == [
        (800, 200, 50),
        (500, 1000, 80),
    ]
    assert {u.model for u in usages} == {"gpt-5-codex"}
    assert {u.assistant for u in usages} == {"Codex"}
    calls = [r for r in plan.records if isinstance(r, AiToolCall)]
    assert [(c.tool_name, c.result_status) for c in calls] == [
        ("shell", "success"),
        ("shell", "error"),
    ]
    messages = [(m.role, m.content) for m in plan.records if isinstance(m, AiMessage)]
    assert messages == [("user", "run the tests"), ("assistant", "All tests pass.")]
    [start] = [r for r in plan.records if isinstance(r, AiSessionStart)]
    assert (start.session_id, start.project_path, start.assistant) == (
        "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "/home/ada/api",
        "Codex",
    )


def test_a_codex_line_before_the_session_is_named_is_skipped_unless_the_file_names_it() -> None:
    line = json.dumps(
        {
            "timestamp": ts(0),
            "type": "event_msg",
            "payload": {"type": "user_message", "message": "hi"},
        }
    )
    assert plan_transcript("u1", "codex", line, now=NOW).skipped == [
        (1, "no session: the file names none before this line")
    ]
    hinted = plan_transcript("u1", "codex", line, now=NOW, session_hint="abc")
    assert hinted.skipped == []
    assert kinds(hinted.records)["message"] == 1


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=10,
)
_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(
            [
                "user",
                "assistant",
                "summary",
                "event_msg",
                "response_item",
                "session_meta",
                "turn_context",
            ]
        ),
        "sessionId": st.text(max_size=5) | _JSON,
        "timestamp": st.sampled_from([ts(1), "2026-02-30T00:00:00Z", "9999-12-31T23:59:59Z"])
        | _JSON,
        "message": _JSON,
        "payload": _JSON,
        "requestId": _JSON,
        "isSidechain": _JSON,
        "toolUseResult": _JSON,
    },
)


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(_FIELDS.map(json.dumps) | st.text(max_size=30), max_size=8))
def test_any_lines_are_read_or_skipped_never_a_crash(lines: list[str]) -> None:
    for source in ("claude", "codex"):
        plan = plan_transcript("u1", source, "\n".join(lines), now=NOW)  # type: ignore[arg-type]
        assert all(isinstance(line, int) for line, _ in plan.skipped)
