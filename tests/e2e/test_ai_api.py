"""The AI API over HTTP on a real ``codetrackr serve`` (one server for the module): every
endpoint and filter of the Claude Code Tracker's API on its paths (its bodies, status codes and
error shape) and on ours (``/api/v1/ai/...``, ``{"data": ...}`` and the envelope), per user,
with AI time in the stats and nothing of another user ever visible.

Writes are eventually visible (docs/ai.md): every read after a write polls until it sees it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.harness import Client, CodeTrackrProcess, eventually, run_cli, snapshot_tables

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]

PATH = "/home/ada/claude-tracker"
OTHER = "/home/ada/website"
DAY = (datetime.now(UTC) - timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)


def at(minutes: float) -> str:
    return (DAY + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class World:
    server: CodeTrackrProcess
    ada: Client
    bob: Client
    session: str  # ada's session in PATH (ended)
    other: str  # ada's session in OTHER (open)
    project_id: int
    other_project_id: int


def post(user: Client, path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = user.http.post(path, json=body, headers=user.key_header)
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


def get(user: Client, path: str, **params: Any) -> Any:
    response = user.http.get(path, params=params, headers=user.bearer)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = CodeTrackrProcess("serve", tmp_path_factory.mktemp("ai") / "data").start()
    try:
        ada, bob = Client(server.url), Client(server.url)
        started = post(
            ada,
            "/api/sessions/start",
            {"project_path": PATH, "start_time": at(0), "user": "ada"},
        )
        assert started["message"] == "Session started successfully"
        session, project_id = started["session_id"], started["project_id"]
        assert isinstance(project_id, int)
        other = post(
            ada,
            "/api/v1/ai/sessions/start",
            {"project_path": OTHER, "start_time": at(120), "session_id": "claude-other"},
        )["data"]
        assert other["session_id"] == "claude-other"
        messages = [
            ("user", "Fix the parser bug in the tokenizer", 1),
            ("assistant", "The parser bug: the parser skipped a token. Fixed the parser.", 2),
            ("user", "Now write tests for the lexer, please", 20),
        ]
        for role, content, minute in messages:
            post(
                ada,
                "/api/conversations",
                {"session_id": session, "content": content, "role": role, "timestamp": at(minute)},
            )
        post(
            ada,
            "/api/conversations",
            {
                "session_id": "claude-other",
                "role": "user",
                "content": "style the landing page",
                "timestamp": at(121),
            },
        )
        for path, action, added, removed, minute in (
            (f"{PATH}/parser.py", "modified", 12, 3, 5),
            (f"{PATH}/test_lexer.py", "created", 40, 0, 25),
            (f"{PATH}/old.py", "deleted", 0, 30, 26),
        ):
            post(
                ada,
                "/api/activities",
                {
                    "session_id": session,
                    "file_path": path,
                    "action": action,
                    "lines_added": added,
                    "lines_removed": removed,
                    "timestamp": at(minute),
                },
            )
        for index, (tool, status, elapsed) in enumerate(
            [("Read", "success", 100), ("Read", "success", 300), ("Edit", "error", 50)]
        ):
            post(
                ada,
                "/api/tool-calls",
                {
                    "session_id": session,
                    "tool_name": tool,
                    "parameters": {"file_path": f"{PATH}/parser.py", "limit": 100},
                    "result_status": status,
                    "execution_time_ms": elapsed,
                    "timestamp": at(3 + index),
                },
            )
        ended = post(
            ada, "/api/sessions/end", {"session_id": session, "end_time": at(30)}, status=200
        )
        assert ended == {"session_id": session, "message": "Session ended successfully"}
        post(bob, "/api/sessions/start", {"project_path": PATH, "start_time": at(0)})
        post(
            bob,
            "/api/conversations",
            {"session_id": "bobs", "role": "user", "content": "parser parser parser"},
        )

        def projected() -> None:
            sessions = get(ada, "/api/sessions")
            assert {s["session_id"] for s in sessions} == {session, "claude-other"}
            assert get(ada, "/api/conversations")["total"] == 4
            assert len(get(ada, "/api/activities")) == 3
            assert len(get(ada, "/api/tool-calls/session/" + session)) == 3
            assert next(s for s in sessions if s["session_id"] == session)["end_time"]
            assert get(bob, "/api/conversations")["total"] == 1

        eventually(projected, timeout_s=60)
        other_id = next(
            s["project_id"] for s in get(ada, "/api/sessions") if s["session_id"] == "claude-other"
        )
        yield World(server, ada, bob, session, "claude-other", project_id, other_id)
    finally:
        server.stop()


# ---- projects ------------------------------------------------------------------------------


def test_projects_list_their_totals(world: World) -> None:
    projects = get(world.ada, "/api/projects")
    assert [p["name"] for p in projects] == ["website", "claude-tracker"]  # last session first
    tracker = projects[1]
    assert tracker["id"] == world.project_id
    assert tracker["path"] == PATH
    assert tracker["total_sessions"] == 1
    assert tracker["total_time_minutes"] == 30
    assert tracker["files_modified_count"] == 3
    assert tracker["lines_changed_count"] == 85
    assert tracker["last_session"] == at(0) + "Z"
    assert tracker["created_at"] == at(0) + "Z"
    assert get(world.ada, "/api/v1/ai/projects") == {"data": projects}


def test_a_project_and_its_stats_with_time_series(world: World) -> None:
    project = get(world.ada, f"/api/projects/{world.project_id}")
    assert project["name"] == "claude-tracker"
    assert [s["session_id"] for s in project["recent_sessions"]] == [world.session]

    stats = get(world.ada, f"/api/projects/{world.project_id}/stats")
    assert stats["project"]["id"] == world.project_id
    [day] = stats["time_series"]
    assert day["date"] == DAY.date().isoformat()
    assert (day["sessions"], day["session_minutes"], day["messages"]) == (1, 30, 3)
    assert (day["lines_added"], day["lines_removed"], day["tool_calls"]) == (52, 33, 3)
    assert stats["totals"]["file_activities"] == 3
    assert stats["actions"] == {"created": 1, "deleted": 1, "modified": 1}
    assert {t["tool_name"] for t in stats["tools"]} == {"Read", "Edit"}
    assert stats["top_files"][0]["file_path"].startswith(PATH)
    ours = get(world.ada, f"/api/v1/ai/projects/{world.project_id}/stats")
    assert ours["data"]["totals"] == stats["totals"]


def test_unknown_and_foreign_projects_are_404_in_each_style(world: World) -> None:
    seed = world.bob.http.get(f"/api/projects/{world.project_id}", headers=world.bob.bearer)
    assert seed.status_code == 404
    body = seed.json()
    assert body["error"] is True
    assert body["code"] == "PROJECT_NOT_FOUND"
    assert set(body) == {"error", "message", "code", "details"}
    ours = world.bob.http.get(
        f"/api/v1/ai/projects/{world.project_id}/stats", headers=world.bob.bearer
    )
    assert ours.status_code == 404
    assert ours.json()["error"]["code"] == "project_not_found"


# ---- sessions ------------------------------------------------------------------------------


def test_sessions_filter_by_project_dates_and_limit(world: World) -> None:
    ada = world.ada
    everything = get(ada, "/api/sessions")
    assert [s["session_id"] for s in everything] == ["claude-other", world.session]  # newest first
    ended = everything[1]
    assert ended["duration_minutes"] == 30
    assert (ended["messages_count"], ended["activities_count"], ended["tool_calls_count"]) == (
        3,
        3,
        3,
    )
    assert ended["user"] == "ada"
    assert ended["assistant"] == "Claude Code"
    assert everything[0]["end_time"] is None
    only = get(ada, "/api/sessions", project_id=world.other_project_id)
    assert [s["session_id"] for s in only] == ["claude-other"]
    day = DAY.date()
    assert len(get(ada, "/api/sessions", start_date=day.isoformat())) == 2
    assert get(ada, "/api/sessions", start_date=(day + timedelta(days=1)).isoformat()) == []
    assert get(ada, "/api/sessions", end_date=(day - timedelta(days=1)).isoformat()) == []
    before_noon = get(ada, "/api/sessions", end_date=at(60))
    assert [s["session_id"] for s in before_noon] == [world.session]
    assert len(get(ada, "/api/sessions", limit=1)) == 1
    assert get(ada, "/api/v1/ai/sessions", limit=1)["data"] == everything[:1]


# ---- conversations -------------------------------------------------------------------------


def test_conversations_page_and_filter(world: World) -> None:
    ada = world.ada
    first = get(ada, "/api/conversations", per_page=2)
    assert (first["total"], first["page"], first["pages"]) == (4, 1, 2)
    second = get(ada, "/api/conversations", per_page=2, page=2)
    contents = [m["content"] for m in first["conversations"] + second["conversations"]]
    assert contents[0] == "style the landing page"  # newest first
    assert len(set(contents)) == 4
    past = get(ada, "/api/conversations", per_page=2, page=3)
    assert (past["conversations"], past["total"]) == ([], 4)  # the total, even past the end
    assert get(ada, "/api/conversations", role="assistant")["total"] == 1
    assert get(ada, "/api/conversations", session_id=world.other)["total"] == 1
    assert get(ada, "/api/conversations", project_id=world.project_id)["total"] == 3
    day = DAY.date()
    assert get(ada, "/api/conversations", start_date=at(60))["total"] == 1
    assert get(ada, "/api/conversations", end_date=at(60))["total"] == 3
    assert (
        get(ada, "/api/conversations", end_date=(day - timedelta(days=1)).isoformat())["total"] == 0
    )
    ours = get(ada, "/api/v1/ai/conversations", per_page=1, role="user")["data"]
    assert (ours["total"], len(ours["conversations"])) == (3, 1)
    message = get(ada, "/api/conversations", session_id=world.other)["conversations"][0]
    assert message["project_id"] == world.other_project_id
    assert message["timestamp"] == at(121) + "Z"


def test_search_ranks_highlights_filters_and_pages(world: World) -> None:
    ada = world.ada
    found = get(ada, "/api/conversations/search", q="parser")
    assert found["total"] == 2
    first, second = found["results"]
    assert first["content"].startswith("The parser bug")  # the word three times
    assert first["score"] > second["score"]
    assert "<mark>parser</mark>" in first["snippet"]
    phrase = get(ada, "/api/conversations/search", q='"write tests for"')
    assert [r["content"] for r in phrase["results"]] == ["Now write tests for the lexer, please"]
    assert "<mark>write tests for</mark>" in phrase["results"][0]["snippet"]
    assert get(ada, "/api/conversations/search", q="parser", role="user")["total"] == 1
    assert (
        get(ada, "/api/conversations/search", q="landing", project_id=world.project_id)["total"]
        == 0
    )
    assert get(ada, "/api/conversations/search", q="parser", limit=1, offset=1)["results"] == [
        second
    ]
    day = DAY.date()
    later = (day + timedelta(days=1)).isoformat()
    assert get(ada, "/api/conversations/search", q="parser", start_date=later)["total"] == 0
    assert get(ada, "/api/conversations/search", q="parser", end_date=day.isoformat())["total"] == 2
    # Bob's "parser parser parser" is his alone.
    assert all("bob" not in r["session_id"] for r in found["results"])
    assert get(ada, "/api/conversations/search", q="parser", session_id=world.other)["total"] == 0
    ours = get(ada, "/api/v1/ai/conversations/search", q="lexer")["data"]
    assert ours["total"] == 1


def test_search_needs_a_word(world: World) -> None:
    response = world.ada.http.get(
        "/api/conversations/search", params={"q": "  !! "}, headers=world.ada.bearer
    )
    assert response.status_code == 400
    assert response.json()["details"] == {"q": "must hold at least one word"}


# ---- activities and tool calls -------------------------------------------------------------


def test_activities_filter(world: World) -> None:
    ada = world.ada
    activities = get(ada, "/api/activities")
    assert [a["action"] for a in activities] == ["deleted", "created", "modified"]
    assert [a["file_path"] for a in get(ada, "/api/activities", action="created")] == [
        f"{PATH}/test_lexer.py"
    ]
    assert len(get(ada, "/api/activities", session_id=world.session)) == 3
    assert get(ada, "/api/activities", session_id=world.other) == []
    assert len(get(ada, "/api/activities", project_id=world.project_id)) == 3
    assert get(ada, "/api/activities", project_id=world.other_project_id) == []
    assert [a["action"] for a in get(ada, "/api/activities", limit=1, offset=1)] == ["created"]
    assert len(get(ada, "/api/activities", start_date=at(20))) == 2
    assert len(get(ada, "/api/activities", end_date=at(20))) == 1
    assert get(ada, "/api/v1/ai/activities", action="deleted")["data"][0]["lines_removed"] == 30
    by_file = get(ada, "/api/activities", file_path=f"{PATH}/parser.py")
    assert [(a["lines_added"], a["lines_removed"]) for a in by_file] == [(12, 3)]


def test_tool_calls_of_a_session_and_their_stats(world: World) -> None:
    ada = world.ada
    calls = get(ada, f"/api/tool-calls/session/{world.session}")
    assert [c["tool_name"] for c in calls] == ["Read", "Read", "Edit"]
    assert calls[0]["parameters"] == {"file_path": f"{PATH}/parser.py", "limit": 100}
    assert get(ada, "/api/tool-calls/session/nope") == []
    assert get(ada, f"/api/v1/ai/tool-calls/session/{world.session}")["data"] == calls
    stats = get(ada, "/api/tool-calls/stats")
    assert stats["total_calls"] == 3
    read = next(t for t in stats["tools"] if t["tool_name"] == "Read")
    assert (read["count"], read["success_rate"]) == (2, 1.0)
    assert read["p50_execution_time_ms"] == 200
    assert read["p95_execution_time_ms"] == pytest.approx(290)
    edit = next(t for t in stats["tools"] if t["tool_name"] == "Edit")
    assert edit["success_rate"] == 0.0
    assert get(ada, "/api/tool-calls/stats", project_id=world.other_project_id)["total_calls"] == 0
    later = (DAY.date() + timedelta(days=1)).isoformat()
    assert get(ada, "/api/tool-calls/stats", start_date=later)["total_calls"] == 0
    assert get(ada, "/api/tool-calls/stats", end_date=DAY.date().isoformat())["total_calls"] == 3


# ---- AI time in the stats ------------------------------------------------------------------


def test_ai_sessions_count_as_ai_coding_time_with_the_assistant_as_editor(world: World) -> None:
    ada = world.ada
    day = DAY.date().isoformat()
    summaries = get(ada, "/api/v1/users/current/summaries", start=day, end=day)["data"]
    [summary] = summaries
    categories = {c["name"]: c["total_seconds"] for c in summary["categories"]}
    editors = {e["name"]: e["total_seconds"] for e in summary["editors"]}
    assert set(categories) == {"ai coding"}
    assert set(editors) == {"Claude Code"}
    # Records after the session's start carry its project: all of it is the projects' time.
    projects = {p["name"]: p["total_seconds"] for p in summary["projects"]}
    assert set(projects) == {"claude-tracker", "website"}
    assert projects["claude-tracker"] == pytest.approx(30 * 60, abs=2)
    # Activity from 10:00 to 10:30 (gaps under 15 minutes joined), and 12:00-12:01.
    total = summary["grand_total"]["total_seconds"]
    assert total == pytest.approx(30 * 60 + 60, abs=2)


# ---- writes: validation, auth, scoping -----------------------------------------------------


def test_bad_writes_are_400_in_the_seeds_shape_and_change_nothing(world: World) -> None:
    ada = world.ada
    bad = ada.http.post(
        "/api/conversations",
        json={"session_id": "x", "content": "hi", "role": "robot"},
        headers=ada.key_header,
    )
    assert bad.status_code == 400
    body = bad.json()
    assert body["error"] is True
    assert body["code"] == "VALIDATION_ERROR"
    assert "role" in body["details"]
    ours = ada.http.post(
        "/api/v1/ai/activities",
        json={"session_id": "x", "file_path": "/a", "action": "renamed"},
        headers=ada.key_header,
    )
    assert ours.status_code == 400
    assert "action" in ours.json()["error"]["details"]["fields"]
    future = ada.http.post(
        "/api/sessions/start",
        json={"project_path": "/x", "start_time": "2999-01-01T00:00:00"},
        headers=ada.key_header,
    )
    assert future.status_code == 400
    assert "start_time" in future.json()["details"]
    not_json = ada.http.post(
        "/api/tool-calls",
        content=b"{not json",
        headers={**ada.key_header, "Content-Type": "application/json"},
    )
    assert not_json.status_code == 400
    assert not_json.json()["error"] is True
    assert get(ada, "/api/conversations")["total"] == 4


def test_credentials_are_required_and_read_only_keys_cannot_write(world: World) -> None:
    anonymous = world.ada.http.get("/api/projects")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "UNAUTHORIZED"
    key = world.ada.http.post(
        "/api/v1/keys", headers=world.ada.bearer, json={"name": "dash", "read_only": True}
    ).json()["key"]["key"]
    read_only = {"X-API-Key": key}
    assert world.ada.http.get("/api/projects", headers=read_only).status_code == 200
    refused = world.ada.http.post(
        "/api/sessions/start", json={"project_path": "/x"}, headers=read_only
    )
    assert refused.status_code == 403
    assert refused.json()["error"] is True


def test_another_users_data_is_never_visible(world: World) -> None:
    bob = world.bob
    assert [p["path"] for p in get(bob, "/api/projects")] == [PATH]
    assert get(bob, "/api/projects")[0]["id"] != world.project_id
    assert get(bob, f"/api/tool-calls/session/{world.session}") == []
    assert get(bob, "/api/activities", session_id=world.session) == []
    assert get(bob, "/api/conversations/search", q="tokenizer")["total"] == 0
    assert get(bob, "/api/conversations/search", q="parser")["total"] == 1
    assert get(bob, "/api/tool-calls/stats")["total_calls"] == 0


# ---- import --------------------------------------------------------------------------------


def test_import_of_a_claude_json_counts_errors_and_is_idempotent(world: World) -> None:
    user = Client(world.server.url)
    document = {
        "projects": {
            "/home/cy/api": {
                "history": [
                    {"display": "add rate limiting", "pastedContents": {}},
                    {"display": "", "pastedContents": {}},
                    {"display": "scaffold the api", "pastedContents": {}},
                ],
                "lastSessionId": "cc-123",
            },
            "/home/cy/empty": {"history": []},
        },
        "sessions": [
            {
                "session_id": "exp-1",
                "project_path": "/home/cy/api",
                "start_time": at(0),
                "end_time": at(45),
                "conversations": [
                    {"role": "user", "content": "hello import", "timestamp": at(1)},
                    {"role": "wizard", "content": "bad role", "timestamp": at(2)},
                ],
                "activities": [
                    {"file_path": "/home/cy/api/app.py", "action": "modified", "timestamp": at(3)}
                ],
                "tool_calls": [{"tool_name": "Bash", "execution_time_ms": 20, "timestamp": at(4)}],
            },
            {"project_path": ""},
        ],
    }
    raw = json.dumps(document).encode()

    def upload() -> dict[str, Any]:
        response = user.http.post(
            "/api/import/claude-data",
            files={"file": ("claude.json", raw, "application/json")},
            headers=user.key_header,
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    first = upload()
    assert first["success"] is True
    assert (first["projects_imported"], first["sessions_imported"]) == (2, 2)
    assert (first["conversations_imported"], first["activities_imported"]) == (3, 2)
    assert len(first["errors"]) == 3
    assert any("history[1]" in error for error in first["errors"])
    assert any("conversations[1]" in error for error in first["errors"])
    assert any(error.startswith("sessions[1]") for error in first["errors"])

    def imported() -> None:
        assert get(user, "/api/conversations")["total"] == 3
        assert len(get(user, "/api/projects")) == 2

    eventually(imported, timeout_s=60)
    prompts = get(user, "/api/conversations", session_id="cc-123")["conversations"]
    assert [m["content"] for m in prompts] == ["add rate limiting", "scaffold the api"]

    again = upload()
    assert again["projects_imported"] == again["conversations_imported"] == 0
    assert again["sessions_imported"] == again["activities_imported"] == 0
    assert get(user, "/api/conversations")["total"] == 3
    assert len(get(user, "/api/sessions")) == 2


def test_import_without_a_file_is_400(world: World) -> None:
    response = world.ada.http.post(
        "/api/import/claude-data", data={"nothing": "here"}, headers=world.ada.key_header
    )
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_UPLOAD"
    garbage = world.ada.http.post(
        "/api/import/claude-data",
        files={"file": ("claude.json", b"[1, 2]", "application/json")},
        headers=world.ada.key_header,
    )
    assert garbage.status_code == 400
    assert garbage.json()["code"] == "INVALID_FILE"


# ---- exports -------------------------------------------------------------------------------


def test_exports_hold_the_callers_ai_activity(world: World) -> None:
    ada = world.ada
    gdpr = ada.http.get("/api/v1/users/current/export", headers=ada.bearer)
    assert gdpr.status_code == 200, gdpr.text
    document = gdpr.json()
    assert len(document["ai_messages"]) == 4
    assert len(document["ai_activities"]) == 3
    assert len(document["ai_tool_calls"]) == 3
    assert {row["session_id"] for row in document["ai_sessions"]} == {world.session, world.other}
    assert {row["project_id"] for row in document["ai_projects"]} == {
        world.project_id,
        world.other_project_id,
    }
    assert all("bob" not in json.dumps(row) for row in document["ai_messages"])
    assert all("user_id" not in row for row in document["ai_messages"])

    ai = ada.http.get("/api/v1/export/ai/json", headers=ada.key_header)
    assert ai.status_code == 200
    assert ai.headers["content-disposition"].endswith('.json"')
    assert {name: len(rows) for name, rows in ai.json().items()} == {
        "ai_projects": len(document["ai_projects"]),
        "ai_sessions": len(document["ai_sessions"]),
        "ai_messages": 4,
        "ai_activities": 3,
        "ai_tool_calls": 3,
        "ai_usage": 0,
    }
    csv_answer = ada.http.get("/api/v1/export/ai/messages.csv", headers=ada.key_header)
    assert csv_answer.status_code == 200
    assert csv_answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(csv_answer.text)))
    assert rows[0] == [
        "message_id",
        "session_id",
        "role",
        "content",
        "project_id",
        "project_path",
        "time",
    ]
    assert sorted(row[3] for row in rows[1:]) == sorted(
        m["content"] for m in document["ai_messages"]
    )
    unknown = ada.http.get("/api/v1/export/ai/secrets.csv", headers=ada.key_header)
    assert unknown.status_code == 400


# ---- erasure and replay (last: the replay stops the module's server) -----------------------

DELETED: list[str] = []  # ids of accounts deleted by these tests


def test_a_range_erasure_removes_the_ai_records_of_its_range(world: World) -> None:
    user = Client(world.server.url)
    post(
        user, "/api/sessions/start", {"project_path": "/p", "start_time": at(0), "session_id": "e"}
    )
    for minute in (1, 200):
        post(
            user,
            "/api/conversations",
            {"session_id": "e", "role": "user", "content": f"m{minute}", "timestamp": at(minute)},
        )
    eventually(lambda: _equal(get(user, "/api/conversations")["total"], 2), timeout_s=60)
    start, end = DAY.isoformat().replace("+00:00", "Z"), at(100) + "Z"
    erased = user.http.post(
        "/api/v1/user/data/delete", json={"start": start, "end": end}, headers=user.bearer
    )
    assert erased.status_code == 202, erased.text

    def gone() -> None:
        messages = get(user, "/api/conversations")["conversations"]
        assert [m["content"] for m in messages] == ["m200"]
        assert get(user, "/api/sessions") == []  # its start was in the range

    eventually(gone, timeout_s=60)


def test_an_account_deletion_removes_its_ai_data(world: World) -> None:
    user = Client(world.server.url)
    user_id = get(user, "/api/v1/user/me")["id"]
    post(user, "/api/sessions/start", {"project_path": "/gone", "session_id": "g"})
    post(user, "/api/tool-calls", {"session_id": "g", "tool_name": "Read"})
    eventually(lambda: _equal(len(get(user, "/api/sessions")), 1), timeout_s=60)
    deleted = user.http.request(
        "DELETE", "/api/v1/user/me", json={"confirm": user.username}, headers=user.bearer
    )
    assert deleted.status_code == 202, deleted.text
    DELETED.append(user_id)
    assert user.http.get("/api/projects", headers=user.key_header).status_code == 401


def test_replay_rebuilds_the_same_ai_tables_and_keeps_erasures(world: World) -> None:
    world.server.stop()
    url = f"chdb://{(world.server.data_dir / 'clickhouse').resolve()}"
    live = snapshot_tables(url)
    for table in ("ai_projects", "ai_sessions", "ai_messages", "ai_activities", "ai_tool_calls"):
        assert live[table], f"{table} is empty"
    assert "ai_usage" in live  # (the AI API writes no usage; tests/e2e/test_ai_import.py does)
    output = run_cli(["replay", "--data-dir", str(world.server.data_dir), "--quiet"])
    assert "replayed" in output
    assert snapshot_tables(url) == live
    assert DELETED, "the account deletion test did not run first"
    for table, rows in live.items():
        assert not any(DELETED[0] in row for row in rows), f"{table} keeps a deleted account"


def _equal(a: object, b: object) -> None:
    assert a == b
