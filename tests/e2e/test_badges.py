"""SVG badges, the heatmap and the public platform stats on a real ``codetrackr serve``.

One public user (UTC, showing languages, streak and activity) records, with WakaTime heartbeats
(duration 0, default 15-minute timeout):

    yesterday 01:00   Python at t, t+600                                 -> 600 s
    today     00:01   W at t, t+600, t+1200 (the gap to Python goes to W) -> W 1200 s
                      Python at t+1200, t+1500                           -> Python 300 s

so today 1500 s, the last 7 days 2100 s (W 1200, Python 900), all time 2100 s, a 2-day streak.
W is ``<Rust & "C">``: it has to come back out of every SVG as those characters.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.harness import Client, CodeTrackrProcess, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]

NS = {"svg": "http://www.w3.org/2000/svg"}
WEIRD = '<Rust & "C">'
CACHE = "max-age=3600, s-maxage=3600"
METRICS = ("coding-time", "today", "streak", "top-language", "all-time")
GREY = "#9f9f9f"
EMPTY_CELL = "#ebedf0"


@dataclass
class World:
    server: CodeTrackrProcess
    anonymous: httpx.Client
    public: Client  # the activity above
    hidden: Client  # public profile showing nothing optional, no activity
    private: Client  # private profile, the same activity as `public`
    before: dict[str, Any]  # /api/v1/stats/public before any heartbeat


def beats(t_yesterday: float, t_today: float) -> list[dict[str, Any]]:
    def hb(t: float, language: str) -> dict[str, Any]:
        return {
            "entity": "/src/main",
            "type": "file",
            "time": t,
            "project": "core",
            "language": language,
        }

    return [
        hb(t_yesterday, "Python"),
        hb(t_yesterday + 600, "Python"),
        hb(t_today, WEIRD),
        hb(t_today + 600, WEIRD),
        hb(t_today + 1200, "Python"),
        hb(t_today + 1500, "Python"),
    ]


def send(user: Client, items: list[dict[str, Any]]) -> None:
    key = base64.b64encode(user.api_key.encode()).decode()
    sent = user.http.post(
        "/api/v1/users/current/heartbeats.bulk",
        json=items,
        headers={"Authorization": f"Basic {key}"},
    )
    assert sent.status_code == 201, sent.text


def profile(user: Client, **fields: bool) -> None:
    update = user.http.post("/api/v1/user/profile/update", headers=user.bearer, json=fields)
    assert update.status_code == 200, update.text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # Platform totals summed on every request: this test reads them before and after activity
    # (their short cache is tested in tests/unit/test_public_stats_cache.py).
    server = CodeTrackrProcess(
        "serve",
        tmp_path_factory.mktemp("badges") / "data",
        env={"CODETRACKR_PUBLIC_STATS_TTL_S": "0"},
    ).start()
    anonymous = httpx.Client(base_url=server.url, timeout=30.0)
    try:
        public, hidden, private = (Client(server.url, timezone="UTC") for _ in range(3))
        profile(
            public,
            is_public=True,
            profile_show_languages=True,
            profile_show_streak=True,
            profile_show_activity=True,
        )
        profile(hidden, is_public=True)
        before = anonymous.get("/api/v1/stats/public")
        assert before.status_code == 200, before.text
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        items = beats(midnight.timestamp() - 23 * 3600, midnight.timestamp() + 60)
        send(public, items)
        send(private, items)
        for user in (public, private):
            eventually(lambda u=user: _assert_week(u, 2100))  # type: ignore[misc]
        yield World(server, anonymous, public, hidden, private, before.json())
    finally:
        anonymous.close()
        server.stop()


def _assert_week(user: Client, seconds: int) -> None:
    assert user.summary_total(range="7d") == seconds


def svg(world: World, path: str, **params: str) -> tuple[httpx.Response, ET.Element]:
    response = world.anonymous.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.headers["cache-control"] == CACHE
    return response, ET.fromstring(response.content)


def texts(root: ET.Element) -> list[str]:
    """The visible texts of a flat badge (the shadow copies are aria-hidden)."""
    return [
        t.text or "" for t in root.iterfind(".//svg:text", NS) if t.get("aria-hidden") != "true"
    ]


def value_colour(root: ET.Element) -> str:
    return root.findall("./svg:g/svg:rect", NS)[1].get("fill", "")


def test_public_user_badges_show_their_values(world: World) -> None:
    name = world.public.username
    expected = {
        "coding-time": ["code time", "35m"],
        "today": ["today", "25m"],
        "streak": ["streak", "2 days 🔥"],
        "top-language": ["language", WEIRD],
        "all-time": ["all time", "35m"],
    }
    for metric, shown in expected.items():
        _, root = svg(world, f"/badge/{name}/{metric}")
        assert texts(root) == shown, metric
        assert value_colour(root) != GREY, metric  # some activity: not the idle colour
    _, flat = svg(world, f"/badge/{name}/today", style="flat")
    assert texts(flat) == ["today", "25m"]


def test_badge_streak_matches_the_owners_streaks(world: World) -> None:
    own = world.public.get("/api/v1/stats/streaks")
    assert own["current_streak"] == 2
    _, root = svg(world, f"/badge/{world.public.username}/streak")
    assert texts(root)[1] == f"{own['current_streak']} days 🔥"


def test_language_badge_over_the_last_7_days(world: World) -> None:
    base = f"/api/v1/user/badge/{world.public.username}"
    _, python = svg(world, f"{base}/python")  # case-insensitive; shows the recorded spelling
    assert texts(python) == ["Python", "15m"]
    _, weird = svg(world, f"{base}/{quote(WEIRD, safe='')}")
    assert texts(weird) == [WEIRD, "20m"]
    assert weird.findtext("svg:title", namespaces=NS) == f"{WEIRD}: 20m"
    _, none = svg(world, f"{base}/Haskell")
    assert texts(none) == ["Haskell", "0m"]
    assert value_colour(none) == GREY


def test_private_and_unknown_users_get_byte_identical_badges(world: World) -> None:
    paths = [f"/badge/{{}}/{metric}" for metric in (*METRICS, "heatmap")]
    paths.append("/api/v1/user/badge/{}/Python")
    bodies = set()
    for path in paths:
        private, root = svg(world, path.format(world.private.username))
        unknown, _ = svg(world, path.format("nobody-by-this-name"))
        assert private.content == unknown.content, path
        assert private.headers.get("content-length") == unknown.headers.get("content-length")
        assert texts(root) == ["codetrackr", "profile private"]
        bodies.add(private.content)
    assert len(bodies) == 1  # one badge, whatever was asked


def test_badges_need_no_credentials_and_ignore_bad_ones(world: World) -> None:
    response = world.anonymous.get(
        f"/badge/{world.public.username}/today", headers={"Authorization": "Bearer nonsense"}
    )
    assert response.status_code == 200
    assert texts(ET.fromstring(response.content)) == ["today", "25m"]


def test_profile_choices_hide_language_streak_and_heatmap(world: World) -> None:
    name = world.hidden.username
    for metric, label in (("streak", "streak"), ("top-language", "language")):
        _, root = svg(world, f"/badge/{name}/{metric}")
        assert texts(root) == [label, "hidden"]
    _, language = svg(world, f"/api/v1/user/badge/{name}/Python")
    assert texts(language) == ["Python", "hidden"]
    _, heatmap = svg(world, f"/badge/{name}/heatmap")
    assert texts(heatmap) == ["activity", "hidden"]
    _, idle = svg(world, f"/badge/{name}/coding-time")  # shown, and nothing recorded
    assert texts(idle) == ["code time", "0m"]
    assert value_colour(idle) == GREY


def test_heatmap_of_the_last_year(world: World) -> None:
    _, root = svg(world, f"/badge/{world.public.username}/heatmap")
    cells = {
        r.get("data-date", ""): r for r in root.iterfind(".//svg:rect", NS) if r.get("data-date")
    }
    assert len(cells) == 365
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    assert max(cells) == today.isoformat()
    assert cells[today.isoformat()].get("data-level") == "4"  # the busier day
    assert cells[yesterday.isoformat()].get("data-level") == "2"
    assert {cells[d.isoformat()].get("fill") for d in (today, yesterday)}.isdisjoint({EMPTY_CELL})
    quiet = [c for d, c in cells.items() if d not in (today.isoformat(), yesterday.isoformat())]
    assert {c.get("fill") for c in quiet} == {EMPTY_CELL}
    title = cells[today.isoformat()].findtext("svg:title", namespaces=NS)
    assert title == f"{today.isoformat()}: 25m"


def test_bad_metrics_and_styles_are_errors_in_the_envelope(world: World) -> None:
    name = world.public.username
    for path, status in (
        (f"/badge/{name}/lines-of-code", 404),
        ("/badge/nobody-by-this-name/lines-of-code", 404),  # before any user lookup
        (f"/badge/{name}/to%20day", 400),
        (f"/badge/{name}/today?style=plastic", 400),
        (f"/api/v1/user/badge/{name}/%20", 404),
    ):
        response = world.anonymous.get(path)
        assert response.status_code == status, path
        assert set(response.json()["error"]) == {"code", "message", "details"}


def test_public_stats_move_by_exactly_the_recorded_time(world: World) -> None:
    before = world.before
    assert before["users"] == 2  # public and hidden
    assert before["total_seconds"] == 0

    def moved() -> dict[str, Any]:
        after = world.anonymous.get("/api/v1/stats/public")
        assert after.status_code == 200, after.text
        body: dict[str, Any] = after.json()
        # both the public and the private user recorded 2100 s: everyone's time counts
        assert body["total_seconds"] == before["total_seconds"] + 2 * 2100
        return body

    after = eventually(moved)
    assert after["users"] == 2
    week = after["last_7_days"]
    assert week["total_seconds"] == 2 * 2100
    assert week["active_users"] == 2
    # languages only from profiles that show theirs (the private user's are not counted)
    assert week["top_languages"] == [
        {"language": WEIRD, "seconds": 1200},
        {"language": "Python", "seconds": 900},
    ]
    schema = world.anonymous.get("/openapi.json").json()
    assert "/api/v1/stats/public" in schema["paths"]
