"""The pure part of ``codetrackr claude-hook``: which writes a Claude Code hook event stands for,
from payloads shaped as Claude Code documents them, and the last answer of a transcript."""

from __future__ import annotations

import json
from pathlib import Path

from codetrackr.claude_hook import (
    Request,
    last_answer,
    requests_for,
    tool_failed,
    tool_key,
)
from schemas.ai_files import bounded_input as bounded
from schemas.ai_files import file_change

NOW = 1_711_792_800.0  # 2024-03-30T10:00:00Z
BASE = {"session_id": "abc-123", "transcript_path": "/t.jsonl", "cwd": "/home/ada/tracker"}


def event(name: str, **fields: object) -> dict[str, object]:
    return {**BASE, "hook_event_name": name, **fields}


def test_a_session_start_and_end() -> None:
    assert requests_for(event("SessionStart", source="startup"), NOW) == [
        Request(
            "/sessions/start",
            {
                "session_id": "abc-123",
                "project_path": "/home/ada/tracker",
                "start_time": "2024-03-30T10:00:00.000+00:00",
                "assistant": "Claude Code",
            },
        )
    ]
    [end] = requests_for(event("SessionEnd", reason="prompt_input_exit"), NOW + 60)
    assert end == Request(
        "/sessions/end", {"session_id": "abc-123", "end_time": "2024-03-30T10:01:00.000+00:00"}
    )


def test_a_prompt_is_a_user_message_of_the_sessions_project() -> None:
    [message] = requests_for(event("UserPromptSubmit", prompt="fix the parser"), NOW)
    assert message.path == "/conversations"
    assert message.body["role"] == "user"
    assert message.body["content"] == "fix the parser"
    assert message.body["project_path"] == "/home/ada/tracker"
    assert requests_for(event("UserPromptSubmit", prompt="  "), NOW) == []


def test_a_tool_use_is_a_call_with_its_duration_and_a_file_activity() -> None:
    payload = event(
        "PostToolUse",
        tool_name="Edit",
        tool_input={"file_path": "/home/ada/tracker/a.py", "old_string": "a\nb", "new_string": "c"},
        tool_response={"filePath": "/home/ada/tracker/a.py", "success": True},
    )
    call, activity = requests_for(payload, NOW + 2.5, started=NOW)
    assert call.path == "/tool-calls"
    assert call.body["execution_time_ms"] == 2500.0
    assert call.body["timestamp"] == "2024-03-30T10:00:00.000+00:00"  # when it started
    assert call.body["result_status"] == "success"
    assert activity.body == {
        "session_id": "abc-123",
        "file_path": "/home/ada/tracker/a.py",
        "action": "modified",
        "lines_added": 1,
        "lines_removed": 2,
        "timestamp": "2024-03-30T10:00:02.500+00:00",
        "project_path": "/home/ada/tracker",
    }


def test_a_failed_or_interrupted_tool_is_an_error_without_file_activity() -> None:
    for response in ({"success": False}, {"error": "denied"}, {"interrupted": True}):
        payload = event(
            "PostToolUse",
            tool_name="Write",
            tool_input={"file_path": "/x.py", "content": "x"},
            tool_response=response,
        )
        [call] = requests_for(payload, NOW)
        assert call.body["result_status"] == "error"
        assert "execution_time_ms" not in call.body
    assert not tool_failed("plain text output")


def test_file_changes_per_tool() -> None:
    assert file_change("Write", {"file_path": "/a", "content": "1\n2\n3"}, {"type": "create"}) == (
        "/a",
        "created",
        3,
        0,
    )
    assert file_change("Write", {"file_path": "/a", "content": ""}, {"type": "update"}) == (
        "/a",
        "modified",
        0,
        0,
    )
    edits = [{"old_string": "x", "new_string": "y\nz"}, {"old_string": "p\nq", "new_string": ""}]
    assert file_change("MultiEdit", {"file_path": "/a", "edits": edits}, {}) == (
        "/a",
        "modified",
        2,
        3,
    )
    assert file_change("Read", {"file_path": "/a"}, {}) is None
    assert file_change("Edit", {}, {}) is None


def test_events_without_a_session_or_not_tracked_are_nothing() -> None:
    assert requests_for({"hook_event_name": "SessionStart"}, NOW) == []
    assert requests_for(event("Notification", message="waiting"), NOW) == []
    assert requests_for(event("PreToolUse", tool_name="Bash"), NOW) == []
    assert requests_for(event("Stop", stop_hook_active=False), NOW) == []  # no answer found


def test_tool_uses_pair_by_id_or_by_input() -> None:
    with_id = event("PreToolUse", tool_name="Bash", tool_use_id="toolu_1", tool_input={"a": 1})
    assert tool_key(with_id) == "abc-123:toolu_1"
    pre = event("PreToolUse", tool_name="Bash", tool_input={"command": "ls", "x": [1]})
    post = event("PostToolUse", tool_name="Bash", tool_input={"x": [1], "command": "ls"})
    assert tool_key(pre) == tool_key(post)
    assert tool_key(pre) != tool_key(event("PreToolUse", tool_name="Bash", tool_input={}))


def test_long_tool_input_is_cut() -> None:
    cut = bounded({"content": "x" * 10_000, "file_path": "/a", "edits": [{"o": "y" * 9000}]})
    assert len(cut["content"]) == 2001
    assert cut["file_path"] == "/a"
    assert cut["edits"] == "<list of 1 items>"


def test_the_last_answer_of_a_transcript_skips_malformed_lines(tmp_path: Path) -> None:
    transcript = tmp_path / "t.jsonl"
    lines = [
        {"type": "user", "message": {"role": "user", "content": "hi"}},
        {
            "type": "assistant",
            "timestamp": "2024-03-30T10:00:05.000Z",
            "message": {"role": "assistant", "content": [{"type": "text", "text": "first"}]},
        },
        {
            "type": "assistant",
            "timestamp": "2024-03-30T10:00:09.000Z",
            "message": {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Done: the parser"},
                    {"type": "tool_use", "name": "Edit", "input": {}},
                    {"type": "text", "text": "is fixed."},
                ],
            },
        },
        {"type": "assistant", "message": {"content": [{"type": "tool_use", "name": "Read"}]}},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n{not json\n"
    transcript.write_text(text)
    assert last_answer(transcript) == ("Done: the parser\nis fixed.", NOW + 9)
    assert last_answer(tmp_path / "missing.jsonl") is None
    [answer] = requests_for(event("Stop"), NOW + 10, last_answer=("ok", NOW + 9))
    assert answer.body["role"] == "assistant"
    assert answer.body["timestamp"] == "2024-03-30T10:00:09.000+00:00"
