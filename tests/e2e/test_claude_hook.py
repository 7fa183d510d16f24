"""``codetrackr claude-hook`` as Claude Code runs it: a process per hook event, the event's JSON on
stdin, against a real server. Offline it queues and exits 0 at once; online the queue goes out
in order; malformed input is skipped; every event shape Claude Code documents is handled."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import CODETRACKR, ROOT, Client, CodeTrackrProcess, eventually, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]

SESSION = "7f3c2a10-claude"
CWD = "/home/ada/tracker"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeTrackrProcess]:
    proc = CodeTrackrProcess("serve", tmp_path_factory.mktemp("hook") / "data").start()
    yield proc
    proc.stop()


def hook(home: Path, payload: bytes, *, url: str, key: str, timeout: float = 3.0) -> float:
    """Run the hook once; returns how long it took (it must exit 0, silently)."""
    began = time.monotonic()
    done = subprocess.run(
        [
            str(CODETRACKR),
            "claude-hook",
            "--api-url",
            url,
            "--api-key",
            key,
            "--timeout",
            str(timeout),
        ],
        input=payload,
        cwd=ROOT,
        env={**os.environ, "CODETRACKR_HOME": str(home)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b""  # Claude Code would add stdout to the conversation
    return time.monotonic() - began


def event(name: str, **fields: Any) -> bytes:
    payload = {
        "session_id": SESSION,
        "transcript_path": fields.pop("transcript_path", "/nonexistent.jsonl"),
        "cwd": CWD,
        "hook_event_name": name,
        **fields,
    }
    return json.dumps(payload).encode()


def queued(home: Path) -> int:
    import sqlite3

    with sqlite3.connect(home / "claude-hook.sqlite3") as db:
        return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])


def test_a_session_reported_offline_then_online(server: CodeTrackrProcess, tmp_path: Path) -> None:
    user = Client(server.url)
    home = tmp_path / "home"
    offline = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    # Offline: the start and the prompt are queued; the hook never waits long.
    for payload in (
        event("SessionStart", source="startup"),
        event("UserPromptSubmit", prompt="fix the parser bug"),
        event(
            "PreToolUse",
            tool_name="Edit",
            tool_use_id="toolu_1",
            tool_input={"file_path": f"{CWD}/parser.py", "old_string": "a", "new_string": "b\nc"},
        ),
    ):
        assert hook(home, payload, url=offline, key=user.api_key) < 10
    assert queued(home) == 2
    assert b"offline" in (home / "claude-hook.log").read_bytes()

    # Malformed input is skipped, never a failure.
    hook(home, b"{not json", url=offline, key=user.api_key)
    assert queued(home) == 2

    # Online: the queue goes out first, then the new events.
    transcript = tmp_path / "session.jsonl"
    transcript.write_text(
        "garbage line\n"
        + json.dumps(
            {
                "type": "assistant",
                "timestamp": "2026-01-01T00:00:00Z",
                "message": {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "Fixed the parser."}],
                },
            }
        )
        + "\n"
    )
    for payload in (
        event(
            "PostToolUse",
            tool_name="Edit",
            tool_use_id="toolu_1",
            tool_input={"file_path": f"{CWD}/parser.py", "old_string": "a", "new_string": "b\nc"},
            tool_response={"filePath": f"{CWD}/parser.py", "success": True},
        ),
        event(
            "PreToolUse", tool_name="Bash", tool_use_id="toolu_2", tool_input={"command": "pytest"}
        ),
        event(
            "PostToolUse",
            tool_name="Bash",
            tool_use_id="toolu_2",
            tool_input={"command": "pytest"},
            tool_response={"interrupted": True, "stdout": "", "stderr": ""},
        ),
        event("SubagentStop", stop_hook_active=False),
        event("Stop", stop_hook_active=False, transcript_path=str(transcript)),
        event("Stop", stop_hook_active=False, transcript_path=str(transcript)),  # twice: once
        event("SessionEnd", reason="other"),
    ):
        hook(home, payload, url=server.url, key=user.api_key)
    assert queued(home) == 0

    def recorded() -> None:
        [session] = user.get("/api/v1/ai/sessions")["data"]
        assert session["session_id"] == SESSION
        assert session["project_path"] == CWD
        assert session["end_time"] is not None
        messages = user.get("/api/v1/ai/conversations")["data"]["conversations"]
        assert sorted((m["role"], m["content"]) for m in messages) == [
            ("assistant", "Fixed the parser."),
            ("user", "fix the parser bug"),
        ]
        calls = user.get(f"/api/v1/ai/tool-calls/session/{SESSION}")["data"]
        assert [(c["tool_name"], c["result_status"]) for c in calls] == [
            ("Edit", "success"),
            ("Bash", "error"),
        ]
        assert all(c["execution_time_ms"] is not None for c in calls)
        [activity] = user.get("/api/v1/ai/activities")["data"]
        assert (activity["file_path"], activity["lines_added"], activity["lines_removed"]) == (
            f"{CWD}/parser.py",
            2,
            1,
        )
        assert activity["project_id"] == session["project_id"]

    eventually(recorded, timeout_s=60)


def test_a_refused_key_keeps_the_queue_until_the_key_is_fixed(
    server: CodeTrackrProcess, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    hook(home, event("SessionStart"), url=server.url, key="ct_not_a_real_key")
    assert queued(home) == 1
    assert b"refused the API key (401)" in (home / "claude-hook.log").read_bytes()
    user = Client(server.url)
    hook(home, event("UserPromptSubmit", prompt="hello"), url=server.url, key=user.api_key)
    assert queued(home) == 0
    eventually(lambda: _one(user.get("/api/v1/ai/sessions")["data"]), timeout_s=60)


def test_an_invalid_write_is_dropped_and_logged(server: CodeTrackrProcess, tmp_path: Path) -> None:
    home = tmp_path / "home"
    user = Client(server.url)
    too_long = event("SessionStart", session_id="s" * 500)  # the server refuses such an id
    hook(home, too_long, url=server.url, key=user.api_key)
    assert queued(home) == 0
    assert b"dropped /sessions/start: 400" in (home / "claude-hook.log").read_bytes()


def _one(rows: list[Any]) -> None:
    assert len(rows) == 1
