"""The WakaTime-compatible read API on a real ``codetrackr serve``, over HTTP.

Shapes are checked against WakaTime's documented responses; times against totals computed by hand
from the reference rule. One activity is recorded for a user (yesterday, in the user's timezone):

    t0     A  write     t0+60  A        t0+120  A  write     t0+600  B        t0+700  B

With the default 15-minute timeout: A covers t0..t0+600 (the gap to B goes to A) = 600 s, B 100 s,
700 s in all. With a 5-minute timeout the 480 s gap breaks: A 120 s, B 100 s = 220 s. Writes
only: the time after each write, t0..t0+60 and t0+120..t0+600 = 540 s.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from api.rules.stats import iso_utc
from projections.daily import day_bounds
from tests.e2e.harness import Client, CodeTrackrProcess, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]

TZ = "Europe/Berlin"
UA = "wakatime/13.1.0 (Linux-6.1.0-x86_64) Python3.9.18 vim/9.0.1 vim-wakatime/11.1.0"
ALIASES = ("/api/v1", "/api/compat/wakatime/v1", "/api/v1/compat/waka")
ITEM_KEYS = {
    "name",
    "total_seconds",
    "percent",
    "digital",
    "decimal",
    "text",
    "hours",
    "minutes",
    "seconds",
}
DAY_KEYS = {
    "grand_total",
    "categories",
    "projects",
    "languages",
    "editors",
    "operating_systems",
    "dependencies",
    "machines",
    "range",
}


@dataclass
class World:
    server: CodeTrackrProcess
    owner: Client  # the activity above, private profile
    public: Client  # the same activity, public profile showing languages only
    day: date  # yesterday, in TZ
    t0: float
    ids: list[str]


def yesterday_noon() -> tuple[date, float]:
    now = datetime.now(ZoneInfo(TZ))
    noon = (now - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    return noon.date(), noon.timestamp()


def activity(t0: float) -> list[dict[str, Any]]:
    def hb(offset: float, project: str, is_write: bool = False) -> dict[str, Any]:
        return {
            "entity": f"/src/{project.lower()}.py",
            "type": "file",
            "category": "coding",
            "time": t0 + offset,
            "project": project,
            "branch": "main",
            "language": "Python",
            "is_write": is_write,
        }

    return [
        hb(0, "A", True),
        hb(60, "A"),
        hb(120, "A", True),
        hb(600, "B"),
        hb(700, "B"),
    ]


def basic(key: str) -> dict[str, str]:
    return {
        "Authorization": "Basic " + base64.b64encode(key.encode()).decode(),
        "User-Agent": UA,
        "X-Machine-Name": "laptop-1",
    }


def send(user: Client, beats: list[dict[str, Any]]) -> list[str]:
    sent = user.http.post(
        "/api/v1/users/current/heartbeats.bulk", json=beats, headers=basic(user.api_key)
    )
    assert sent.status_code == 201, sent.text
    return [body["data"]["id"] for body, _ in sent.json()["responses"]]


def get(user: Client, path: str, **params: Any) -> dict[str, Any]:
    response = user.http.get(path, headers=basic(user.api_key), params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = CodeTrackrProcess("serve", tmp_path_factory.mktemp("waka-read") / "data").start()
    try:
        day, t0 = yesterday_noon()
        owner = Client(server.url, timezone=TZ)
        public = Client(server.url, timezone=TZ)
        update = public.http.post(
            "/api/v1/user/profile/update",
            headers=public.bearer,
            json={"is_public": True, "profile_show_languages": True},
        )
        assert update.status_code == 200, update.text
        ids = send(owner, activity(t0))
        send(public, activity(t0))
        for user in (owner, public):
            eventually(lambda u=user: _assert_total(u, day, 700))  # type: ignore[misc]
        yield World(server, owner, public, day, t0, ids)
    finally:
        server.stop()


def _assert_total(user: Client, day: date, seconds: float, **params: Any) -> None:
    body = get(user, "/api/v1/users/current/summaries", start=day, end=day, **params)
    assert body["data"][0]["grand_total"]["total_seconds"] == seconds


def test_summaries_shape_and_reference_time(world: World) -> None:
    day = world.day.isoformat()
    body = get(world.owner, "/api/v1/users/current/summaries", start=day, end=day)
    assert set(body) == {"data", "cumulative_total", "daily_average", "start", "end"}
    (only,) = body["data"]
    assert set(only) == DAY_KEYS
    assert only["grand_total"] == {
        "digital": "0:11",
        "decimal": "0.19",
        "hours": 0,
        "minutes": 11,
        "text": "11 mins",
        "total_seconds": 700,
    }
    projects = {p["name"]: p for p in only["projects"]}
    assert {name: p["total_seconds"] for name, p in projects.items()} == {"A": 600, "B": 100}
    assert set(projects["A"]) == ITEM_KEYS
    assert projects["A"]["percent"] == pytest.approx(85.71)
    assert only["languages"][0]["name"] == "Python"
    assert only["editors"][0]["name"] == "vim"
    assert only["operating_systems"][0]["name"] == "Linux"
    assert only["machines"][0]["name"] == "laptop-1"
    assert only["range"]["date"] == day
    assert only["range"]["timezone"] == TZ
    assert body["cumulative_total"]["seconds"] == 700
    assert body["daily_average"]["seconds"] == 700


def test_summaries_filters_timeout_and_writes_only(world: World) -> None:
    day = world.day
    _assert_total(world.owner, day, 220, timeout=5)
    _assert_total(world.owner, day, 540, writes_only="true")
    _assert_total(world.owner, day, 100, project="B")
    detail = get(world.owner, "/api/v1/users/current/summaries", start=day, end=day, project="A")
    (only,) = detail["data"]
    assert [b["name"] for b in only["branches"]] == ["main"]
    assert [(e["name"], e["total_seconds"]) for e in only["entities"]] == [("/src/a.py", 600)]
    _assert_total(world.owner, day, 600, project="A", branches="main")
    _assert_total(world.owner, day, 0, project="A", branches="other")
    # Another timezone re-dates the heartbeats: the same 700 s, on the same day at noon.
    _assert_total(world.owner, day, 700, timezone="Asia/Tokyo")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"timeout": 0, "range": "today"}, "timeout"),
        ({"timeout": 241, "range": "today"}, "timeout"),
        ({"range": "fortnight"}, "range"),
        ({}, "range"),
        ({"start": "2026-01-01"}, "end"),
        ({"range": "today", "branches": "main"}, "branches"),
        ({"range": "today", "timezone": "Mars/Olympus"}, "timezone"),
        ({"start": "2020-01-01", "end": "2026-01-01"}, "end"),
    ],
)
def test_summaries_reject_bad_parameters_in_the_envelope(
    world: World, params: dict[str, Any], field: str
) -> None:
    response = world.owner.http.get(
        "/api/v1/users/current/summaries", headers=world.owner.bearer, params=params
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["message"] or field in str(error["details"])


def test_user_settings_change_the_default_rule(world: World) -> None:
    user = Client(world.server.url, timezone=TZ)
    send(user, activity(world.t0))
    eventually(lambda: _assert_total(user, world.day, 700))
    for bad in (0, 241, "fast"):
        rejected = user.http.post(
            "/api/v1/user/profile/update", headers=user.bearer, json={"timeout": bad}
        )
        assert rejected.status_code == 400, rejected.text
    changed = user.http.post(
        "/api/v1/user/profile/update", headers=user.bearer, json={"timeout": 5}
    )
    assert changed.status_code == 200, changed.text
    _assert_total(user, world.day, 220)
    _assert_total(user, world.day, 700, timeout=15)  # the request still overrides it
    me = get(user, "/api/v1/users/current")["data"]
    assert me["timeout"] == 5
    user.http.post("/api/v1/user/profile/update", headers=user.bearer, json={"writes_only": True})
    _assert_total(user, world.day, 60)  # writes only, 5 minutes: t0..t0+60 (t0+120 is alone)
    stats = get(user, "/api/v1/users/current/stats/last_7_days")["data"]
    assert stats["timeout"] == 5
    assert stats["writes_only"] is True
    assert stats["total_seconds"] == 60


def test_statusbar_today_in_both_spellings_and_every_alias(world: World) -> None:
    now = datetime.now(ZoneInfo(TZ))
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    first = max(midnight + 1, now.timestamp() - 400)
    user = Client(world.server.url, timezone=TZ)
    send(user, [{**activity(first)[0], "time": first}, {**activity(first)[1], "time": first + 90}])

    def today() -> None:
        body = get(user, "/api/v1/users/current/statusbar/today")
        assert body["data"]["grand_total"]["total_seconds"] == 90

    eventually(today)
    for base in ALIASES:
        for spelling in ("statusbar", "status_bar"):
            body = get(user, f"{base}/users/current/{spelling}/today")
            assert set(body) == {"cached_at", "has_team_features", "data"}
            assert set(body["data"]) == DAY_KEYS
            assert body["data"]["grand_total"]["total_seconds"] == 90
            assert body["data"]["range"]["text"] == "Today"
        named = get(user, f"{base}/users/{user.username}/summaries", range="Today")
        assert named["data"][0]["grand_total"]["total_seconds"] == 90


def test_stats_ranges_and_shape(world: World) -> None:
    body = get(world.owner, "/api/v1/users/current/stats/last_7_days")["data"]
    for key in (
        "total_seconds",
        "human_readable_total",
        "daily_average",
        "human_readable_daily_average",
        "languages",
        "projects",
        "editors",
        "operating_systems",
        "categories",
        "machines",
        "dependencies",
        "best_day",
        "range",
        "human_readable_range",
        "is_up_to_date",
        "status",
        "start",
        "end",
        "timezone",
        "timeout",
        "writes_only",
        "user_id",
        "username",
        "is_coding_activity_visible",
        "is_other_usage_visible",
    ):
        assert key in body, key
    assert body["total_seconds"] == 700
    assert body["best_day"] == {
        "date": world.day.isoformat(),
        "text": "11 mins",
        "total_seconds": 700,
    }
    assert body["range"] == "last_7_days"
    year, month = world.day.strftime("%Y"), world.day.strftime("%Y-%m")
    for name in ("last_30_days", "last_6_months", "last_year", "all_time", year, month):
        body = get(world.owner, f"/api/v1/users/current/stats/{name}")["data"]
        assert body["total_seconds"] == 700, name
    assert get(world.owner, "/api/v1/users/current/stats/1999")["data"]["total_seconds"] == 0
    # Chronova's ranges, under its base too: the world's activity was yesterday.
    for base in ("/api/v1", "/api/v1/compat/waka"):
        yesterday = get(world.owner, f"{base}/users/current/stats/yesterday")["data"]
        assert (yesterday["total_seconds"], yesterday["range"]) == (700, "yesterday")
        assert yesterday["start"][:10] <= world.day.isoformat() <= yesterday["end"][:10]
        today = get(world.owner, f"{base}/users/current/stats/today")["data"]
        assert (today["total_seconds"], today["range"]) == (0, "today")
    bad = world.owner.http.get("/api/v1/users/current/stats/forever", headers=world.owner.bearer)
    assert bad.status_code == 400


def test_public_stats_without_credentials_and_identical_404s(world: World) -> None:
    anonymous = httpx.Client(base_url=world.server.url, timeout=30)
    card = anonymous.get(f"/api/v1/users/{world.public.username}/stats/last_7_days")
    assert card.status_code == 200, card.text
    data = card.json()["data"]
    assert data["total_seconds"] == 700
    assert [lang["name"] for lang in data["languages"]] == ["Python"]
    assert data["projects"] == []  # the profile does not show projects
    assert data["machines"] == []
    private = anonymous.get(f"/api/v1/users/{world.owner.username}/stats/last_7_days")
    unknown = anonymous.get("/api/v1/users/nobody-by-this-name/stats/last_7_days")
    assert private.status_code == unknown.status_code == 404
    assert private.json() == unknown.json()
    assert anonymous.get("/api/v1/users/current/stats/last_7_days").status_code == 401
    # The owner still reads their own private stats, and another user's public ones.
    other = get(world.owner, f"/api/v1/users/{world.public.username}/stats/last_7_days")
    assert other["data"]["projects"] == []
    profile = anonymous.get(f"/api/v1/users/{world.public.username}")
    assert profile.status_code == 200
    assert "timeout" not in profile.json()["data"]
    assert anonymous.get(f"/api/v1/users/{world.owner.username}").json() == private.json()


def test_other_users_data_is_forbidden_without_revealing_them(world: World) -> None:
    for name in (world.public.username, "nobody-by-this-name"):
        response = world.owner.http.get(
            f"/api/v1/users/{name}/summaries", headers=world.owner.bearer, params={"range": "today"}
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"


def test_shields_endpoint(world: World) -> None:
    anonymous = httpx.Client(base_url=world.server.url, timeout=30)
    base = f"/api/compat/shields/v1/{world.public.username}"
    badge = anonymous.get(f"{base}/interval:last_7_days")
    assert badge.status_code == 200, badge.text
    assert badge.json() == {
        "schemaVersion": 1,
        "label": "coding time",
        "message": "11 mins",
        "color": "blue",
    }
    assert "max-age" in badge.headers["cache-control"]
    language = anonymous.get(f"{base}/interval:all_time/language:Python").json()
    assert (language["label"], language["message"]) == ("Python", "11 mins")
    hidden = anonymous.get(f"{base}/interval:all_time/project:A")
    private = anonymous.get(f"/api/compat/shields/v1/{world.owner.username}/interval:today")
    assert hidden.status_code == private.status_code == 404
    assert anonymous.get(f"{base}/colour:red").status_code == 400


def test_all_time_since_today(world: World) -> None:
    data = get(world.owner, "/api/v1/users/current/all_time_since_today")["data"]
    assert data["total_seconds"] == 700
    assert data["text"] == "11 mins"
    assert data["range"]["start_date"] == world.day.isoformat()
    assert data["is_up_to_date"] is True


def test_durations_and_slices(world: World) -> None:
    day = world.day.isoformat()
    body = get(world.owner, "/api/v1/users/current/durations", date=day)
    assert set(body) == {"data", "start", "end", "timezone"}
    assert [(d["project"], d["time"], d["duration"]) for d in body["data"]] == [
        ("A", world.t0, 600),
        ("B", world.t0 + 600, 100),
    ]
    by_entity = get(world.owner, "/api/v1/users/current/durations", date=day, slice_by="entity")
    assert [d["entity"] for d in by_entity["data"]] == ["/src/a.py", "/src/b.py"]
    short = get(world.owner, "/api/v1/users/current/durations", date=day, timeout=5)
    assert [d["duration"] for d in short["data"]] == [120, 100]
    bad = world.owner.http.get(
        "/api/v1/users/current/durations",
        headers=world.owner.bearer,
        params={"date": day, "slice_by": "mood"},
    )
    assert bad.status_code == 400


def test_heartbeats_of_a_day(world: World) -> None:
    body = get(world.owner, "/api/v1/users/current/heartbeats", date=world.day.isoformat())
    assert set(body) == {"data", "start", "end", "timezone"}
    # The window is the local day, up to 23:59:59 local: not the next day's midnight.
    start, next_midnight = day_bounds(world.day, body["timezone"])
    assert body["start"] == iso_utc(start)
    assert body["end"] == iso_utc(next_midnight - 1)
    assert [hb["id"] for hb in body["data"]] == world.ids
    first = body["data"][0]
    assert (first["entity"], first["project"], first["is_write"]) == ("/src/a.py", "A", True)
    assert first["time"] == world.t0


def test_projects_user_agents_machine_names(world: World) -> None:
    projects = get(world.owner, "/api/v1/users/current/projects")["data"]
    assert [p["name"] for p in projects] == ["B", "A"]  # most recent first
    assert projects[0]["last_heartbeat_at"].endswith("Z")
    assert [
        p["name"] for p in get(world.owner, "/api/v1/users/current/projects", q="a")["data"]
    ] == ["A"]
    agents = get(world.owner, "/api/v1/users/current/user_agents")["data"]
    assert [(a["value"], a["editor"], a["os"]) for a in agents] == [(UA, "vim", "Linux")]
    machines = get(world.owner, "/api/v1/users/current/machine_names")["data"]
    assert [m["name"] for m in machines] == ["laptop-1"]


def test_users_goals_and_insights(world: World) -> None:
    me = get(world.owner, "/api/v1/users/current")["data"]
    assert me["username"] == world.owner.username
    assert me["timeout"] == 15
    assert get(world.owner, "/api/v1/users/current/goals") == {
        "data": [],
        "total": 0,
        "total_pages": 0,
    }
    unknown = world.owner.http.get(
        "/api/v1/users/current/goals/some-goal", headers=basic(world.owner.api_key)
    )
    assert unknown.status_code == 404  # goals are tested in test_goals.py
    for kind in (
        "weekday",
        "days",
        "best_day",
        "daily_average",
        "projects",
        "languages",
        "editors",
        "categories",
        "machines",
        "operating_systems",
    ):
        body = get(world.owner, f"/api/v1/users/current/insights/{kind}/last_7_days")["data"]
        assert kind in body
        assert body["range"] == "last_7_days"
    projects = get(world.owner, "/api/v1/users/current/insights/projects/last_30_days")["data"]
    assert projects["projects"] == [{"name": "A", "total": 600}, {"name": "B", "total": 100}]
    bad = world.owner.http.get(
        "/api/v1/users/current/insights/moods/last_7_days", headers=world.owner.bearer
    )
    assert bad.status_code == 400


def test_both_dialects_give_the_same_totals_in_both_read_apis(world: World) -> None:
    waka_user = Client(world.server.url, timezone=TZ)
    ct_user = Client(world.server.url, timezone=TZ)
    beats = activity(world.t0)
    send(waka_user, beats)
    ct = [
        {
            "project": hb["project"],
            "file": hb["entity"],
            "lang": hb["language"],
            "branch": hb["branch"],
            "time": hb["time"],
            "duration": 0,
            "is_write": hb["is_write"],
        }
        for hb in beats
    ]
    sent = ct_user.http.post("/api/v1/heartbeats", json=ct, headers=ct_user.key_header)
    assert sent.status_code == 200, sent.text
    day = world.day.isoformat()
    for user in (waka_user, ct_user):
        eventually(lambda u=user: _assert_total(u, world.day, 700))  # type: ignore[misc]

    def views(user: Client) -> tuple[Any, ...]:
        summary = user.get("/api/v1/stats/summary", start=day, end=day)
        languages = user.get("/api/v1/stats/languages", start=day, end=day)["languages"]
        waka = get(user, "/api/v1/users/current/summaries", start=day, end=day)["data"][0]
        writes = get(user, "/api/v1/users/current/summaries", start=day, end=day, writes_only=1)
        return (
            summary["total_seconds"],
            [(lang["language"], lang["seconds"]) for lang in languages],
            waka["grand_total"]["total_seconds"],
            [(p["name"], p["total_seconds"]) for p in waka["projects"]],
            writes["data"][0]["grand_total"]["total_seconds"],
        )

    assert (
        views(waka_user)
        == views(ct_user)
        == (700, [("Python", 700)], 700, [("A", 600), ("B", 100)], 540)
    )


def test_deleted_heartbeats_leave_every_read(world: World) -> None:
    user = Client(world.server.url, timezone=TZ)
    ids = send(user, activity(world.t0))
    eventually(lambda: _assert_total(user, world.day, 700))
    deleted = user.http.request(
        "DELETE",
        "/api/v1/users/current/heartbeats.bulk",
        json={"date": world.day.isoformat(), "ids": ids[3:]},
        headers=basic(user.api_key),
    )
    assert deleted.status_code == 202, deleted.text
    eventually(lambda: _assert_total(user, world.day, 120))  # A alone: t0..t0+120
    day = world.day.isoformat()
    listed = get(user, "/api/v1/users/current/heartbeats", date=day)["data"]
    assert [hb["id"] for hb in listed] == ids[:3]
    spans = get(user, "/api/v1/users/current/durations", date=day)["data"]
    assert [(d["project"], d["duration"]) for d in spans] == [("A", 120)]
    assert [p["name"] for p in get(user, "/api/v1/users/current/projects")["data"]] == ["A"]
    _assert_total(user, world.day, 120, timezone="Asia/Tokyo")  # the archive fold agrees


@pytest.mark.parametrize(
    ("path", "params", "ignored"),
    [
        # WakaTime's stats take no dimension filter: the totals would be all languages'.
        ("/api/v1/users/current/stats/last_7_days", {"category": "coding"}, "category"),
        ("/api/v1/compat/waka/users/current/stats/today", {"project": "Alpha"}, "project"),
        ("/api/v1/users/current/stats", {"branch": "main"}, "branch"),
        ("/api/v1/users/current/summaries", {"range": "today", "entity": "a"}, "entity"),
        ("/api/v1/users/current/durations", {"date": "2026-01-01", "category": "c"}, "category"),
        ("/api/v1/users/current/all_time_since_today", {"language": "Go"}, "language"),
        ("/api/v1/users/current/insights/days/last_7_days", {"project": "Alpha"}, "project"),
        ("/api/v1/users/current/statusbar/today", {"project": "Alpha"}, "project"),
        ("/api/v1/users/current/heartbeats", {"date": "2026-01-01", "project": "A"}, "project"),
        ("/api/v1/stats/summary", {"range": "7d", "project": "Alpha"}, "project"),
        ("/api/v1/stats/languages", {"language": "Python"}, "language"),
        ("/api/v1/stats/daily", {"timezone": "UTC"}, "timezone"),
        ("/api/v1/leaderboards/global", {"language": "Python"}, "language"),
        ("/api/v1/leaders", {"country": "US"}, "country"),
    ],
)
def test_a_known_filter_a_route_does_not_apply_is_refused(
    world: World, path: str, params: dict[str, str], ignored: str
) -> None:
    answer = world.owner.http.get(path, headers=basic(world.owner.api_key), params=params)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "unsupported_filter"
    assert error["details"]["filter"] == ignored
    assert repr(ignored) in error["message"]


def test_filters_a_route_applies_and_other_parameters_still_work(world: World) -> None:
    day = world.day.isoformat()
    owner = world.owner
    # Supported filters are applied (project on summaries), non-filters ignored as usual.
    alpha = get(owner, "/api/v1/users/current/summaries", start=day, end=day, project="B")
    everything = get(owner, "/api/v1/users/current/summaries", start=day, end=day, cache="1")
    assert 0 < alpha["cumulative_total"]["seconds"] < everything["cumulative_total"]["seconds"]
    # Another reader of a public profile sees the owner's counting rule: asking for another
    # one is refused, not ignored.
    anonymous = httpx.get(
        f"{world.server.url}/api/v1/users/{world.public.username}/stats/last_7_days",
        params={"timeout": 1},
        timeout=30,
    )
    assert anonymous.status_code == 400, anonymous.text
    assert anonymous.json()["error"]["code"] == "unsupported_filter"
    assert anonymous.json()["error"]["details"]["filter"] == "timeout"
