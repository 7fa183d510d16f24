"""Weekly leaderboards on a real ``codetrackr serve``: who is ranked, in which order, in which
ISO week, and how late and duplicate heartbeats move the ranks.

The boards are a projection: every assertion waits (bounded) for the processors to catch up.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from projections.leaderboard import iso_week_id, week_of
from tests.e2e.harness import Client, CodeTrackrProcess, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]

BERLIN = "Europe/Berlin"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeTrackrProcess]:
    proc = CodeTrackrProcess("serve", tmp_path_factory.mktemp("boards") / "data").start()
    yield proc
    proc.stop()


def member(server: CodeTrackrProcess, *, country: str = "DE", **profile: Any) -> Client:
    user = Client(server.url, timezone=BERLIN)
    body = {
        "is_public": True,
        "show_in_leaderboard": True,
        "profile_show_languages": True,  # language boards rank only those who show them
        "country": country,
        **profile,
    }
    changed = user.http.post("/api/v1/user/profile/update", headers=user.bearer, json=body)
    assert changed.status_code == 200, changed.text
    return user


def send(user: Client, times: list[float], language: str = "Python") -> None:
    beats = [
        {"entity": "/x.py", "type": "file", "time": t, "project": "p", "language": language}
        for t in times
    ]
    auth = "Basic " + base64.b64encode(user.api_key.encode()).decode()
    sent = user.http.post(
        "/api/v1/users/current/heartbeats.bulk", json=beats, headers={"Authorization": auth}
    )
    assert sent.status_code == 201, sent.text


def board(server: CodeTrackrProcess, path: str = "global", **params: Any) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/v1/leaderboards/{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ranks(body: dict[str, Any], users: list[Client]) -> list[tuple[str, int]]:
    names = {u.username for u in users}
    return [(e["username"], e["seconds"]) for e in body["leaderboard"] if e["username"] in names]


def berlin(year: int, month: int, day: int, hour: int, minute: int) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(BERLIN)).timestamp()


def test_iso_weeks_late_and_duplicate_heartbeats_move_ranks(server: CodeTrackrProcess) -> None:
    # ISO week 2026-W10 runs Monday March 2 to Sunday March 8 (in each user's local days).
    ada, bob = member(server), member(server)
    sunday_late = berlin(2026, 3, 8, 23, 40)
    send(ada, [sunday_late, sunday_late + 600])  # 600 s on Sunday, week 10
    send(ada, [berlin(2026, 3, 9, 0, 5), berlin(2026, 3, 9, 0, 5) + 60])  # Monday: week 11
    send(bob, [berlin(2026, 3, 4, 10, 0), berlin(2026, 3, 4, 10, 0) + 300])  # 300 s, week 10
    users = [ada, bob]

    def week10_order() -> None:
        body = board(server, week="2026-W10")
        assert body["week"] == "2026-W10"
        assert ranks(body, users) == [(ada.username, 600), (bob.username, 300)]

    eventually(week10_order)
    assert ranks(board(server, week="2026-W11"), users) == [(ada.username, 60)]

    # A late heartbeat (sent now, dated in week 10) and a duplicate of it: bob overtakes once.
    late = [berlin(2026, 3, 4, 10, 5), berlin(2026, 3, 4, 10, 15)]
    send(bob, late)
    send(bob, late)

    def bob_first() -> None:
        order = ranks(board(server, week="2026-W10"), users)
        # bob: 10:00 -> 10:05 (already sent) -> 10:15: 300 + 600 = 900 s.
        assert order == [(bob.username, 900), (ada.username, 600)]

    eventually(bob_first)
    entry = next(
        e for e in board(server, week="2026-W10")["leaderboard"] if e["username"] == bob.username
    )
    assert entry["top_language"] == "Python"
    assert entry["top_editor"] is None or isinstance(entry["top_editor"], str)
    assert entry["country"] == "DE"


def test_only_public_opted_in_users_and_filters(server: CodeTrackrProcess) -> None:
    week = "2026-W20"  # May 11 to 17
    t = berlin(2026, 5, 13, 9, 0)
    shown = member(server, country="US", available_for_hire=True)
    not_opted = member(server, show_in_leaderboard=False)
    private = member(server, is_public=False)
    rustacean = member(server, country="MX")
    for user in (shown, not_opted, private):
        send(user, [t, t + 120])
    send(rustacean, [t, t + 60], language="Rust")
    everyone = [shown, not_opted, private, rustacean]

    def listed() -> None:
        assert ranks(board(server, week=week), everyone) == [
            (shown.username, 120),
            (rustacean.username, 60),
        ]

    eventually(listed)
    assert ranks(board(server, week=week, country="us"), everyone) == [(shown.username, 120)]
    assert ranks(board(server, "country/MX", week=week), everyone) == [(rustacean.username, 60)]
    assert ranks(board(server, week=week, available_for_hire="true"), everyone) == [
        (shown.username, 120)
    ]
    assert ranks(board(server, "language/rust", week=week), everyone) == [(rustacean.username, 60)]
    paged = board(server, week=week, limit=1, offset=1)
    assert paged["limit"] == 1
    assert len(paged["leaderboard"]) <= 1
    assert paged["leaderboard"][0]["rank"] == 2
    # Turning the profile private takes the user off the board.
    private_now = shown.http.post(
        "/api/v1/user/profile/update", headers=shown.bearer, json={"is_public": False}
    )
    assert private_now.status_code == 200
    eventually(lambda: _assert_absent(server, week, shown))


def _assert_absent(server: CodeTrackrProcess, week: str, user: Client) -> None:
    assert user.username not in [e["username"] for e in board(server, week=week)["leaderboard"]]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("global", {"limit": 501}),
        ("global", {"limit": 0}),
        ("global", {"offset": -1}),
        ("global", {"week": "2026-10"}),
        ("global", {"country": "USA"}),
        ("country/USA", {}),
    ],
)
def test_bad_parameters(server: CodeTrackrProcess, path: str, params: dict[str, Any]) -> None:
    response = httpx.get(f"{server.url}/api/v1/leaderboards/{path}", params=params, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "validation_error"


def test_wakatime_leaders_shape_for_the_current_week(server: CodeTrackrProcess) -> None:
    now = datetime.now(UTC)
    monday = datetime.combine(week_of(now.date()), datetime.min.time(), tzinfo=UTC)
    first = max(monday.timestamp() + 1, now.timestamp() - 600)
    leader = Client(server.url, timezone="UTC")
    leader.http.post(
        "/api/v1/user/profile/update",
        headers=leader.bearer,
        json={"is_public": True, "show_in_leaderboard": True, "profile_show_languages": True},
    )
    send(leader, [first, first + 240], language="Go")
    viewer = Client(server.url)  # private: ranked nowhere

    def listed() -> dict[str, Any]:
        body = leader.get("/api/v1/leaders", language="Go")
        assert body["current_user"] is not None
        assert body["current_user"] in body["data"]
        return body

    body = eventually(listed)
    assert {"current_user", "data", "page", "total_pages", "range"} <= set(body)
    assert body["range"]["name"] == iso_week_id(week_of(now.date()))
    mine = body["current_user"]
    assert mine["user"]["username"] == leader.username
    assert mine["running_total"]["total_seconds"] == 240
    assert mine["running_total"]["languages"] == [{"name": "Go", "total_seconds": 240}]
    assert viewer.get("/api/v1/leaders")["current_user"] is None
    assert (monday + timedelta(days=6)).date().isoformat() == body["range"]["end_date"]
