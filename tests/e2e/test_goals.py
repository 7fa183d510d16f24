"""Goals end to end on a real ``codetrackr serve`` over its socket: create, list, read, change
and delete; progress after heartbeats (all time, scoped, at most); analytics; WakaTime's
fields and paths; refusals in the envelope that change nothing; nobody reading or changing
another user's goals; the GDPR export; the live ``goal.reached`` message on the owner's socket;
and a restart on the same data keeping the goals, an account deletion taking them."""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.e2e.harness import Client, CodeTrackrProcess, eventually
from tests.e2e.test_erasure import log_records, mentions

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse, pytest.mark.slow]

ENV = {"CODETRACKR_JWT_SECRET": "goals-e2e-" + "g" * 40}
GOALS = "/api/v1/users/current/goals"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeTrackrProcess]:
    proc = CodeTrackrProcess("serve", tmp_path_factory.mktemp("goals") / "data", env=ENV)
    proc.start()
    yield proc
    proc.stop()


def status(response: httpx.Response, expected: int) -> Any:
    assert response.status_code == expected, response.text
    return response.json() if response.content else None


def error_code(response: httpx.Response, expected: int) -> str:
    code: str = status(response, expected)["error"]["code"]
    return code


def create(user: Client, body: dict[str, Any], expected: int = 201) -> Any:
    return status(user.http.post(GOALS, headers=user.bearer, json=body), expected)


def goals_of(user: Client) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = user.get(GOALS)["data"]
    return data


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(key.encode()).decode()}


def recent_times(count: int) -> list[float]:
    """``count`` times one minute apart, ending now, all on today's UTC date when possible."""
    now = time.time()
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    first = max(midnight + 1, now - 60 * (count - 1) - 5)
    step = (now - 5 - first) / max(1, count - 1)
    return [first + i * step for i in range(count)]


def send(user: Client, count: int, **fields: Any) -> float:
    """``count`` heartbeats a minute apart ending now; returns the seconds they add up to."""
    times = recent_times(count)
    beats = [
        {
            "entity": "/src/app.py",
            "type": "file",
            "category": fields.get("category", "coding"),
            "time": t,
            "project": fields.get("project", "core"),
            "language": fields.get("language", "Python"),
            "is_write": True,
        }
        for t in times
    ]
    sent = user.http.post(
        "/api/v1/users/current/heartbeats.bulk", json=beats, headers=basic(user.api_key)
    )
    assert sent.status_code == 201, sent.text
    return times[-1] - times[0]


def progress_of(user: Client, goal_id: str) -> dict[str, Any]:
    data: dict[str, Any] = user.get(f"{GOALS}/{goal_id}")["data"]
    return data


def test_create_list_read_update_delete(server: CodeTrackrProcess) -> None:
    user = Client(server.url, timezone="UTC")
    made = create(user, {"type": "daily", "target_seconds": 14400, "language": "typescript"})[
        "data"
    ]
    assert made["type"] == "daily"
    assert made["target_seconds"] == 14400
    assert made["language"] == "TypeScript"  # the canonical name
    assert made["kind"] == "at_least"
    assert made["progress"]["current_seconds"] == 0
    assert made["progress"]["percentage"] == 0
    assert made["progress"]["streak"] == 0
    assert made["progress"]["status"] == "pending"
    # WakaTime's fields on the same object.
    assert (made["delta"], made["seconds"], made["is_inverse"]) == ("day", 14400, False)
    assert made["languages"] == ["TypeScript"]
    assert made["chart_data"][-1]["actual_seconds_text"] == "0 secs"
    assert made["chart_data"][-1]["range"]["timezone"] == "UTC"

    listed = user.get(GOALS)
    assert [g["id"] for g in listed["data"]] == [made["id"]]
    assert (listed["total"], listed["total_pages"]) == (1, 1)

    changed = status(
        user.http.patch(
            f"{GOALS}/{made['id']}",
            headers=user.bearer,
            json={"type": "weekly", "target_seconds": 36000, "language": None, "project": "api"},
        ),
        200,
    )["data"]
    assert (changed["type"], changed["target_seconds"]) == ("weekly", 36000)
    assert (changed["language"], changed["project"]) == (None, "api")
    assert changed["progress"]["period_start"] <= changed["progress"]["period_end"]
    assert progress_of(user, made["id"])["project"] == "api"

    assert status(user.http.delete(f"{GOALS}/{made['id']}", headers=user.bearer), 204) is None
    assert goals_of(user) == []
    again = user.http.delete(f"{GOALS}/{made['id']}", headers=user.bearer)
    assert error_code(again, 404) == "not_found"


def test_progress_follows_heartbeats_for_all_time_and_a_scope(server: CodeTrackrProcess) -> None:
    user = Client(server.url, timezone="UTC")
    everything = create(user, {"type": "daily", "target_seconds": 120})["data"]
    python = create(user, {"type": "daily", "target_seconds": 120, "language": "Python"})["data"]
    go = create(user, {"type": "weekly", "target_seconds": 60, "language": "Go"})["data"]
    seconds = send(user, 4, language="Python")

    def reached() -> None:
        assert progress_of(user, everything["id"])["progress"]["status"] == "success"

    eventually(reached)
    for goal_id in (everything["id"], python["id"]):
        view = progress_of(user, goal_id)
        assert view["progress"]["current_seconds"] == pytest.approx(seconds, abs=1)
        assert view["progress"]["percentage"] >= 100
        assert view["progress"]["streak"] == 1
        assert view["status"] == "success"
        assert view["chart_data"][-1]["range_status"] == "success"
    other = progress_of(user, go["id"])
    assert other["progress"]["current_seconds"] == 0
    assert other["progress"]["status"] == "pending"


def test_late_heartbeats_of_earlier_days_count_in_the_running_week(
    server: CodeTrackrProcess,
) -> None:
    user = Client(server.url, timezone="UTC")
    weekly = create(user, {"type": "weekly", "target_seconds": 600})["data"]
    start = weekly["progress"]["period_start"]
    monday = datetime.fromisoformat(start).replace(tzinfo=UTC)
    assert monday.weekday() == 0
    # An offline queue delivers this week's Monday morning now: 3 heartbeats, 4 minutes apart
    # (on a Monday morning itself, as early as the week allows).
    first = max(monday.timestamp() + 1, min(monday.timestamp() + 6 * 3600, time.time() - 600))
    beats = [
        {
            "entity": "/src/late.py",
            "type": "file",
            "time": first + i * 240,
            "project": "late",
            "language": "Go",
        }
        for i in range(3)
    ]
    sent = user.http.post(
        "/api/v1/users/current/heartbeats.bulk", json=beats, headers=basic(user.api_key)
    )
    assert sent.status_code == 201, sent.text

    def counted() -> None:
        assert progress_of(user, weekly["id"])["progress"]["current_seconds"] == 480

    eventually(counted)
    assert progress_of(user, weekly["id"])["progress"]["status"] == "pending"  # 480 of 600


def test_at_most_goal_fails_once_exceeded(server: CodeTrackrProcess) -> None:
    user = Client(server.url, timezone="UTC")
    meetings = create(
        user, {"type": "daily", "target_seconds": 60, "category": "meeting", "kind": "at_most"}
    )["data"]
    # WakaTime's way of saying the same: an inverse goal.
    calm = create(user, {"delta": "day", "seconds": 7200, "is_inverse": True})["data"]
    assert (meetings["is_inverse"], calm["kind"]) == (True, "at_most")
    assert meetings["progress"]["status"] == "pending"  # nothing yet: within the limit so far
    send(user, 4, category="meeting")

    def exceeded() -> None:
        assert progress_of(user, meetings["id"])["progress"]["status"] == "fail"

    eventually(exceeded)
    view = progress_of(user, meetings["id"])
    assert view["categories"] == ["meeting"]
    assert view["progress"]["remaining_seconds"] == 0
    assert progress_of(user, calm["id"])["progress"]["status"] == "pending"


def test_analytics_streaks_and_ratios(server: CodeTrackrProcess) -> None:
    user = Client(server.url, timezone="Europe/Berlin")
    made = create(user, {"type": "daily", "target_seconds": 60})["data"]
    send(user, 3)
    eventually(lambda: _assert(progress_of(user, made["id"])["progress"]["status"] == "success"))
    body = user.get(f"{GOALS}/analytics", weeks=4, months=2)["data"]
    assert body["timezone"] == "Europe/Berlin"
    assert body["total_goals"] == 1
    assert body["current_periods"] == {"success": 1, "pending": 0, "fail": 0}
    [goal] = body["goals"]
    assert goal["streak"] == {"current": 1, "longest": 1}
    assert goal["achievement"]["overall"] == {"achieved": 1, "decided": 1, "ratio": 1.0}
    [week] = goal["achievement"]["weekly"]
    assert (week["achieved"], week["decided"], week["ratio"]) == (1, 1, 1.0)
    [month] = goal["achievement"]["monthly"]
    assert month["month"] == body["today"][:7]
    bad = user.http.get(f"{GOALS}/analytics", headers=user.bearer, params={"weeks": 0})
    assert error_code(bad, 400) == "validation_error"


def _assert(condition: bool) -> None:
    assert condition


def test_wakatime_paths_and_clients(server: CodeTrackrProcess) -> None:
    user = Client(server.url, timezone="UTC")
    made = create(user, {"type": "daily", "target_seconds": 3600, "title": "An hour a day"})["data"]
    for base in ("/api/v1", "/api/compat/wakatime/v1", "/api/v1/compat/waka"):
        for who in ("current", user.username):
            response = user.http.get(
                f"{base}/users/{who}/goals/{made['id']}", headers=basic(user.api_key)
            )
            data = status(response, 200)["data"]
            assert data["title"] == "An hour a day"
            # What wakatime-cli --today-goal prints.
            assert data["chart_data"][-1]["actual_seconds_text"] == "0 secs"
    listed = status(
        user.http.get("/api/compat/wakatime/v1/users/current/goals", headers=basic(user.api_key)),
        200,
    )
    assert [g["id"] for g in listed["data"]] == [made["id"]]


def test_bad_bodies_are_refused_and_change_nothing(server: CodeTrackrProcess) -> None:
    user = Client(server.url, timezone="UTC")
    for body in (
        {},
        {"type": "daily"},
        {"type": "monthly", "target_seconds": 60},
        {"type": "daily", "target_seconds": 0},
        {"type": "daily", "target_seconds": 86401},
        {"type": "daily", "target_seconds": 60, "language": "Python", "project": "x"},
        {"type": "daily", "target_seconds": 60, "project": "   "},
        {"type": "daily", "delta": "week", "target_seconds": 60},
        {"type": "daily", "target_seconds": 60, "kind": "at_least", "is_inverse": True},
    ):
        refused = user.http.post(GOALS, headers=user.bearer, json=body)
        assert error_code(refused, 400) == "validation_error", body
    assert goals_of(user) == []
    made = create(user, {"type": "weekly", "target_seconds": 100_000})["data"]
    shrink = user.http.patch(f"{GOALS}/{made['id']}", headers=user.bearer, json={"type": "daily"})
    assert error_code(shrink, 400) == "validation_error"  # 100000 s do not fit in a day
    assert goals_of(user)[0]["type"] == "weekly"
    # A read-only key reads goals but changes none.
    ro = status(
        user.http.post("/api/v1/keys", headers=user.bearer, json={"name": "ro", "read_only": True}),
        200,
    )["key"]["key"]
    assert status(user.http.get(GOALS, headers={"X-API-Key": ro}), 200)["total"] == 1
    refused = user.http.post(
        GOALS, headers={"X-API-Key": ro}, json={"type": "daily", "target_seconds": 60}
    )
    assert refused.status_code == 403
    assert user.http.get(GOALS).status_code == 401


def test_nobody_reads_or_changes_another_users_goals(server: CodeTrackrProcess) -> None:
    alice, bob = Client(server.url), Client(server.url)
    hers = create(alice, {"type": "daily", "target_seconds": 60})["data"]
    path = f"{GOALS}/{hers['id']}"
    assert error_code(bob.http.get(path, headers=bob.bearer), 404) == "not_found"
    patched = bob.http.patch(path, headers=bob.bearer, json={"target_seconds": 1})
    assert error_code(patched, 404) == "not_found"
    assert error_code(bob.http.delete(path, headers=bob.bearer), 404) == "not_found"
    assert goals_of(bob) == []
    theirs = bob.http.get(f"/api/v1/users/{alice.username}/goals", headers=bob.bearer)
    assert theirs.status_code == 403
    assert progress_of(alice, hers["id"])["target_seconds"] == 60


def test_gdpr_export_lists_the_goals(server: CodeTrackrProcess) -> None:
    user = Client(server.url)
    made = create(user, {"type": "weekly", "target_seconds": 3600, "editor": "vim"})["data"]
    export = user.get("/api/v1/users/current/export")
    assert [(g["id"], g["period"], g["scope"], g["scope_value"]) for g in export["goals"]] == [
        (made["id"], "weekly", "editor", "vim")
    ]


@contextlib.contextmanager
def live_socket(server: CodeTrackrProcess, user: Client) -> Iterator[ClientConnection]:
    ticket = status(user.http.post("/api/v1/ws-ticket", headers=user.bearer), 200)["ticket"]
    url = server.url.replace("http://", "ws://") + f"/ws?ticket={ticket}"
    with connect(url, open_timeout=10, close_timeout=2) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        yield ws


def next_of_type(ws: ClientConnection, kind: str, timeout_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        message: dict[str, Any] = json.loads(ws.recv(timeout=left))
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} within {timeout_s} s")


def test_live_goal_reached_arrives_once_on_the_owners_socket(server: CodeTrackrProcess) -> None:
    alice, bob = Client(server.url, timezone="UTC"), Client(server.url, timezone="UTC")
    made = create(alice, {"type": "daily", "target_seconds": 60, "title": "warm up"})["data"]
    create(bob, {"type": "daily", "target_seconds": 60})
    with live_socket(server, alice) as mine, live_socket(server, bob) as theirs:
        send(alice, 3)
        reached = next_of_type(mine, "goal.reached")
        assert reached["goal_id"] == made["id"]
        assert reached["title"] == "warm up"
        assert reached["period_start"] == reached["period_end"]
        assert reached["current_seconds"] >= 60
        # More heartbeats in the same period: stats change, the goal is not announced again.
        send(alice, 2)
        next_of_type(mine, "stats.changed")
        assert "goal.reached" not in [m["type"] for m in _drain(mine, 2.0)]
        # Bob's socket hears nothing of Alice's goal.
        assert "goal.reached" not in [m["type"] for m in _drain(theirs, 0.5)]


def _drain(ws: ClientConnection, wait_s: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait_s
    with contextlib.suppress(TimeoutError):
        while (left := deadline - time.monotonic()) > 0:
            out.append(json.loads(ws.recv(timeout=left)))
    return out


def test_restart_keeps_goals_and_account_deletion_takes_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = CodeTrackrProcess("serve", data, env=ENV).start()
    try:
        keep, leave = Client(server.url), Client(server.url)
        kept = create(keep, {"type": "weekly", "target_seconds": 600, "kind": "at_most"})["data"]
        status(
            keep.http.patch(f"{GOALS}/{kept['id']}", headers=keep.bearer, json={"title": "steady"}),
            200,
        )
        gone = create(keep, {"type": "daily", "target_seconds": 60})["data"]
        status(keep.http.delete(f"{GOALS}/{gone['id']}", headers=keep.bearer), 204)
        leaving = create(leave, {"type": "daily", "target_seconds": 60})["data"]
        assert mentions(log_records(data), leaving["id"])  # the check below can fail
        deleted = leave.http.request(
            "DELETE", "/api/v1/user/me", headers=leave.bearer, json={"confirm": leave.username}
        )
        assert deleted.status_code == 202, deleted.text
        eventually(lambda: _assert(mentions(log_records(data), leaving["id"]) == []), timeout_s=60)
        before = goals_of(keep)
    finally:
        server.stop()
    server = CodeTrackrProcess("serve", data, env=ENV, port=server.port).start()
    try:
        after = goals_of(keep)
        assert [(g["id"], g["title"], g["kind"]) for g in after] == [
            (kept["id"], "steady", "at_most")
        ]
        assert [g["id"] for g in after] == [g["id"] for g in before]
        assert keep.http.get(f"{GOALS}/{gone['id']}", headers=keep.bearer).status_code == 404
    finally:
        server.stop()
