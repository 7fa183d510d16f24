"""Wakapi's API on a real ``codetrackr serve`` (and the ``ingest`` role), over HTTP as Wakapi's
clients use it: heartbeat ingest on every path Wakapi serves, with Wakapi's answers and auth.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.wakatime_dump import dump_file, spread_days, write_dump
from ingest.wakapi import WAKAPI_PATHS, WAKAPI_USER_PATHS
from tests.e2e.harness import Client, CodeTrackrProcess, eventually, run_cli
from tests.support.wakapi_db import wakapi_database

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]

UA = "wakatime/v1.90.0 (linux-6.8.0-x86_64) go1.22.1 vscode/1.85.0 vscode-wakatime/24.5.0"
INGEST_PATHS = [p for p, _ in WAKAPI_PATHS] + [
    p.replace("{user}", "current") for p, _ in WAKAPI_USER_PATHS
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeTrackrProcess]:
    proc = CodeTrackrProcess("serve", tmp_path_factory.mktemp("wakapi") / "data").start()
    yield proc
    proc.stop()


def yesterday_noon_utc() -> float:
    now = datetime.now(UTC)
    return (now - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0).timestamp()


def waka(t: float, entity: str = "/src/main.go", **extra: Any) -> dict[str, Any]:
    return {"entity": entity, "type": "file", "time": t, "project": "P", "language": "Go", **extra}


def basic(key: str) -> dict[str, str]:
    return {"Authorization": f"Basic {base64.b64encode(key.encode()).decode()}"}


def bearer64(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {base64.b64encode(key.encode()).decode()}"}


def total_yesterday(user: Client) -> int:
    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    return user.summary_total(start=day, end=day)


def settles_at(user: Client, seconds: int) -> None:
    def check() -> None:
        assert total_yesterday(user) == seconds

    eventually(check, timeout_s=60)


# ---- ingest ---------------------------------------------------------------------------------


def test_every_wakapi_path_records_heartbeats_with_wakapis_answer(
    server: CodeTrackrProcess,
) -> None:
    user = Client(server.url)  # UTC: yesterday's noon is yesterday
    t0 = yesterday_noon_utc()
    for i, path in enumerate(INGEST_PATHS):
        # One heartbeat a minute apart per path: a single object on odd paths, an array on even.
        beat = waka(t0 + 60 * i)
        body: Any = beat if i % 2 else [beat]
        answer = user.http.post(path, json=body, headers={**basic(user.api_key), "User-Agent": UA})
        assert answer.status_code == 201, (path, answer.text)
        ((data, status),) = answer.json()["responses"]
        assert status == 201, path
        assert data["error"] is None
        assert data["data"]["entity"] == "/src/main.go"
        assert data["data"]["time"] == t0 + 60 * i
    # len(paths) heartbeats a minute apart: (n - 1) minutes.
    settles_at(user, 60 * (len(INGEST_PATHS) - 1))
    editors = user.get("/api/v1/users/current/stats/last_7_days")["data"]["editors"]
    assert [e["name"] for e in editors] == ["vscode"]


def test_each_item_is_answered_on_its_own_and_nothing_valid_is_a_400(
    server: CodeTrackrProcess,
) -> None:
    user = Client(server.url)
    t0 = yesterday_noon_utc()
    items = [waka(t0), waka(946684799.0), "not an object", waka(t0 + 120)]
    answer = user.http.post(
        "/api/users/current/heartbeats.bulk", json=items, headers=basic(user.api_key)
    )
    assert answer.status_code == 201, answer.text
    statuses = [status for _, status in answer.json()["responses"]]
    assert statuses == [201, 400, 400, 201]
    bad = answer.json()["responses"][1][0]
    assert bad["data"] is None
    assert "2000" in bad["error"]
    settles_at(user, 120)

    for body in ([], [waka(946684799.0)], [{"entity": "x"}]):
        refused = user.http.post("/api/heartbeats", json=body, headers=basic(user.api_key))
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "validation_error"
    not_json = user.http.post(
        "/api/heartbeat",
        content=b"{nope",
        headers={**basic(user.api_key), "Content-Type": "application/json"},
    )
    assert not_json.status_code == 400
    assert not_json.json()["error"]["code"] == "invalid_json"


def test_wakapi_auth_forms_and_who_may_write(server: CodeTrackrProcess) -> None:
    user = Client(server.url)
    other = Client(server.url)
    t0 = yesterday_noon_utc()
    accepted = [
        ({"Authorization": f"Bearer {user.api_key}"}, {}),
        (bearer64(user.api_key), {}),
        (basic(user.api_key), {}),
        (basic(f"{user.api_key}:"), {}),
        ({}, {"api_key": user.api_key}),
    ]
    for i, (headers, params) in enumerate(accepted):
        answer = user.http.post(
            "/api/heartbeat", json=waka(t0 + 60 * i), headers=headers, params=params
        )
        assert answer.status_code == 201, (headers, params, answer.text)
    settles_at(user, 60 * (len(accepted) - 1))

    nobody = httpx.post(f"{server.url}/api/heartbeat", json=waka(t0))
    assert nobody.status_code == 401
    assert nobody.json()["error"]["code"] == "unauthorized"
    wrong = user.http.post(
        "/api/heartbeat", json=waka(t0), headers=bearer64(str(other.api_key)[::-1])
    )
    assert wrong.status_code == 401
    # Another user's name in the path: 401, as Wakapi answers it; the caller's own name works.
    someone = user.http.post(
        f"/api/users/{other.username}/heartbeats", json=waka(t0), headers=basic(user.api_key)
    )
    assert someone.status_code == 401, someone.text
    mine = user.http.post(
        f"/api/users/{user.username}/heartbeats.bulk",
        json=[waka(t0 + 3600)],
        headers=basic(user.api_key),
    )
    assert mine.status_code == 201, mine.text
    # A read-only key reads but never writes.
    ro = user.http.post(
        "/api/v1/keys", headers=user.bearer, json={"name": "ro", "read_only": True}
    ).json()["key"]["key"]
    refused = user.http.post("/api/heartbeat", json=waka(t0), headers=basic(ro))
    assert refused.status_code == 403, refused.text
    assert total_yesterday(other) == 0


def test_the_wakatime_base_keeps_wakatimes_single_answer(server: CodeTrackrProcess) -> None:
    """``/api/v1`` is WakaTime's namespace: one object is answered ``{"data": hb}``; Wakapi's
    own base for WakaTime clients answers Wakapi's ``responses``."""
    user = Client(server.url)
    t0 = yesterday_noon_utc()
    waka_answer = user.http.post(
        "/api/v1/users/current/heartbeats", json=waka(t0), headers=basic(user.api_key)
    )
    assert waka_answer.status_code == 201
    assert waka_answer.json()["data"]["time"] == t0
    wakapi_answer = user.http.post(
        "/api/compat/wakatime/v1/users/current/heartbeats",
        json=waka(t0 + 60),
        headers=basic(user.api_key),
    )
    assert wakapi_answer.status_code == 201
    assert wakapi_answer.json()["responses"][0][1] == 201
    # The rest of the WakaTime API stays under Wakapi's base (a delete, here).
    hb_id = waka_answer.json()["data"]["id"]
    day = datetime.fromtimestamp(t0, UTC).date().isoformat()
    deleted = user.http.request(
        "DELETE",
        "/api/compat/wakatime/v1/users/current/heartbeats.bulk",
        json={"date": day, "ids": [hb_id]},
        headers=basic(user.api_key),
    )
    assert deleted.status_code == 202, deleted.text


def test_the_ingest_role_serves_the_same_paths(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    ingest = CodeTrackrProcess("ingest", tmp_path_factory.mktemp("wakapi-ingest") / "data").start()
    try:
        for path in INGEST_PATHS:
            # No account lives on this process's log: any key is unknown, so 401, not 404.
            answer = httpx.post(
                f"{ingest.url}{path}",
                json=[waka(yesterday_noon_utc())],
                headers=basic("6f5e8d1c-3b2a-4c1d-9e8f-7a6b5c4d3e2f"),
            )
            assert answer.status_code == 401, (path, answer.text)
            assert answer.json()["error"]["code"] == "unauthorized"
        # Its storage is the log.
        assert httpx.get(f"{ingest.url}/api/health").text == "app=1\ndb=1"
    finally:
        ingest.stop()


# ---- reads ----------------------------------------------------------------------------------


VIM_UA = "wakatime/13.1.0 (Linux-6.1-x86_64) Python3.9 vim/9.0 vim-wakatime/11.0"


@pytest.fixture(scope="module")
def reader(server: CodeTrackrProcess) -> Client:
    """A public user with yesterday's 600 s: P (Go, vscode) 300 s, then Q (Python, vim) 300 s."""
    user = Client(server.url)
    t0 = yesterday_noon_utc()
    items = [
        waka(t0, branch="main"),
        waka(t0 + 120, branch="main"),
        waka(t0 + 300, "/src/q.py", project="Q", language="Python", user_agent=VIM_UA),
        waka(t0 + 600, "/src/q.py", project="Q", language="Python", user_agent=VIM_UA),
    ]
    sent = user.http.post(
        "/api/heartbeats", json=items, headers={**basic(user.api_key), "User-Agent": UA}
    )
    assert sent.status_code == 201, sent.text
    public = user.http.post(
        "/api/v1/user/profile/update",
        headers=user.bearer,
        json={"is_public": True, "profile_show_languages": True},
    )
    assert public.status_code == 200, public.text
    settles_at(user, 600)
    return user


def wakapi_summary(user: Client, **params: str) -> httpx.Response:
    return user.http.get("/api/summary", params=params, headers=basic(user.api_key))


def keyed(items: list[dict[str, Any]]) -> dict[str, int]:
    return {item["key"]: item["total"] for item in items}


def test_summary_over_an_interval_with_wakapis_shape(reader: Client) -> None:
    for interval in ("last_7_days", "7_days", "week" if datetime.now(UTC).weekday() else "7_days"):
        body = wakapi_summary(reader, interval=interval)
        assert body.status_code == 200, body.text
        data = body.json()
        assert data["user_id"] == reader.username
        assert keyed(data["projects"]) == {"P": 300, "Q": 300}
        assert keyed(data["languages"]) == {"Go": 300, "Python": 300}
        assert keyed(data["editors"]) == {"vscode": 300, "vim": 300}
        assert keyed(data["operating_systems"]) == {"Linux": 600}
        assert keyed(data["categories"]) == {"coding": 600}
        assert data["labels"] == []
        assert data["branches"] == data["entities"] == []  # only for one project
        assert datetime.fromisoformat(data["to"]) > datetime.fromisoformat(data["from"])
    # `start` names an interval too, as in Wakapi.
    assert keyed(wakapi_summary(reader, start="any").json()["projects"]) == {"P": 300, "Q": 300}
    # Today: nothing yet.
    assert wakapi_summary(reader, interval="today").json()["projects"] == []


def test_summary_from_to_are_instants(reader: Client) -> None:
    t0 = yesterday_noon_utc()
    yesterday = datetime.fromtimestamp(t0, UTC).date()
    whole = wakapi_summary(
        reader, **{"from": yesterday.isoformat(), "to": (yesterday + timedelta(days=1)).isoformat()}
    ).json()
    assert keyed(whole["projects"]) == {"P": 300, "Q": 300}
    assert whole["from"].startswith(yesterday.isoformat())
    # From one minute in: P's first minute is outside.
    later = datetime.fromtimestamp(t0 + 60, UTC).isoformat()
    part = wakapi_summary(reader, **{"from": later, "to": "2099-01-01"}).json()
    assert keyed(part["projects"]) == {"P": 240, "Q": 300}
    # `to` is the first instant of its date: yesterday up to yesterday is empty.
    empty = wakapi_summary(reader, **{"from": yesterday.isoformat(), "to": yesterday.isoformat()})
    assert empty.json()["projects"] == []


def test_summary_filters_are_applied_or_refused(reader: Client) -> None:
    assert keyed(wakapi_summary(reader, interval="any", language="go").json()["projects"]) == {
        "P": 300
    }
    assert keyed(wakapi_summary(reader, interval="any", editor="vim").json()["languages"]) == {
        "Python": 300
    }
    linux = wakapi_summary(reader, interval="any", operating_system="Linux").json()
    assert keyed(linux["projects"]) == {"P": 300, "Q": 300}
    assert wakapi_summary(reader, interval="any", machine="nowhere").json()["projects"] == []
    assert keyed(wakapi_summary(reader, interval="any", category="coding").json()["editors"]) == {
        "vscode": 300,
        "vim": 300,
    }
    one = wakapi_summary(reader, interval="any", project="P").json()
    assert keyed(one["projects"]) == {"P": 300}
    assert keyed(one["branches"]) == {"main": 300}
    assert keyed(one["entities"]) == {"/src/main.go": 300}
    assert keyed(wakapi_summary(reader, interval="any", branch="main").json()["projects"]) == {
        "P": 300
    }
    entity = wakapi_summary(reader, interval="any", entity="/src/q.py").json()
    assert keyed(entity["projects"]) == {"Q": 300}

    # No project has this label (labels: test_project_aliases_and_labels_apply_to_every_read).
    assert wakapi_summary(reader, interval="any", label="work").json()["projects"] == []
    for params in (
        {},
        {"interval": "fortnight"},
        {"from": "yesterday", "to": "2099-01-01"},
        {"from": "2026-03-02", "to": "2026-03-01"},
        {"from": "2026-03-01T10:00:00", "to": "2026-03-02"},  # RFC 3339 needs an offset
    ):
        refused = wakapi_summary(reader, **params)
        assert refused.status_code == 400, (params, refused.text)
        assert refused.json()["error"]["code"] == "validation_error"
    assert httpx.get(f"{reader.base_url}/api/summary?interval=today").status_code == 401


def test_statusbar_over_wakapis_intervals(reader: Client) -> None:
    for base in ("/api", "/api/v1", "/api/compat/wakatime/v1"):
        week = reader.http.get(
            f"{base}/users/current/statusbar/last_7_days", headers=basic(reader.api_key)
        )
        assert week.status_code == 200, (base, week.text)
        data = week.json()["data"]
        assert data["grand_total"]["total_seconds"] == 600
        assert {p["name"]: p["total_seconds"] for p in data["projects"]} == {"P": 300, "Q": 300}
        assert data["range"]["text"] == "last_7_days"
        today = reader.http.get(
            f"{base}/users/current/statusbar/today", headers=basic(reader.api_key)
        )
        assert today.status_code == 200, (base, today.text)
        assert today.json()["data"]["grand_total"]["total_seconds"] == 0
    bad = reader.http.get("/api/users/current/statusbar/forever", headers=basic(reader.api_key))
    assert bad.status_code == 400


def test_shields_badge_as_wakapi_serves_it(reader: Client) -> None:
    anonymous = httpx.Client(base_url=reader.base_url, timeout=30)
    base = f"/api/compat/shields/v1/{reader.username}"

    def message(spec: str) -> str:
        answer = anonymous.get(f"{base}/{spec}")
        assert answer.status_code == 200, (spec, answer.text)
        body = answer.json()
        assert body["schemaVersion"] == 1
        return str(body["message"])

    assert message("interval:7_days") == "10 mins"
    assert message("interval:any") == "10 mins"
    assert message("interval:12_months") == "10 mins"
    assert message("interval:30_days/language:Go") == "5 mins"
    assert message("interval:last_7_days/editor:vim") == "5 mins"
    assert message("interval:last_7_days/os:Linux") == "10 mins"
    # A project is hidden (the profile does not show projects), a machine is the owner's only.
    assert anonymous.get(f"{base}/interval:any/project:P").status_code == 404
    assert anonymous.get(f"{base}/interval:any/machine:x").status_code == 404
    # So is a label, which is made of projects.
    assert anonymous.get(f"{base}/interval:any/label:work").status_code == 404
    assert anonymous.get(f"{base}/interval:any/colour:red").status_code == 400


def test_health(server: CodeTrackrProcess) -> None:
    text = httpx.get(f"{server.url}/api/health")
    assert text.status_code == 200
    assert text.text == "app=1\ndb=1"
    as_json = httpx.get(f"{server.url}/api/health", headers={"Content-Type": "application/json"})
    assert as_json.json() == {"app": 1, "db": 1}


def zone_at_midday(now: datetime) -> str:
    """A fixed-offset zone in which ``now`` is between 12:00 and 13:00 (today stays today)."""
    offset = 12 - now.hour
    if offset == 0:
        return "Etc/UTC"
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"  # POSIX signs: GMT-3 is UTC+3


def test_metrics_in_prometheus_text_format_with_wakapis_names(
    server: CodeTrackrProcess, reader: Client
) -> None:
    now = datetime.now(UTC)
    user = Client(server.url, timezone=zone_at_midday(now))
    t = now.timestamp()
    items = [
        waka(t - 1200, project="M"),  # 20 minutes ago, today in that zone
        waka(t - 900, project="M"),
        waka(t - 600, "/src/n.py", project="N", language="Python"),
        waka(t - 3 * 86400, project="M"),  # three days ago: all time, not today
        waka(t - 3 * 86400 + 60, project="M"),
    ]
    sent = user.http.post("/api/heartbeats", json=items, headers=basic(user.api_key))
    assert sent.status_code == 201, sent.text

    def scrape() -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        answer = user.http.get("/api/metrics", headers=basic(user.api_key))
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain")
        found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        for family in text_string_to_metric_families(answer.text):
            assert family.type == "gauge", family
            for sample in family.samples:
                found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = (
                    sample.value
                )
        assert found["wakatime_heartbeats_total"][()] == 5
        return found

    metrics = eventually(scrape, timeout_s=60)
    # M 20 -> 15 minutes ago, and the gap to N goes to M (the earlier group); N's heartbeat is
    # the last of the run and adds nothing, so N has no sample.
    assert metrics["wakatime_seconds_total"][()] == 600
    assert metrics["wakatime_cumulative_seconds_total"][()] == 660
    assert metrics["wakatime_project_seconds_total"] == {(("name", "M"),): 600}
    assert metrics["wakatime_language_seconds_total"] == {(("name", "Go"),): 600}
    assert metrics["wakatime_category_seconds_total"] == {(("name", "coding"),): 600}
    assert metrics["wakatime_rank"][()] == 0  # not on the leaderboard
    assert "wakatime_label_seconds_total" not in metrics
    # Only the caller's: another user's scrape does not see these.
    theirs = reader.http.get("/api/metrics", headers=basic(reader.api_key)).text
    assert 'name="M"' not in theirs
    assert httpx.get(f"{server.url}/api/metrics").status_code == 401


def test_wakatime_summaries_stats_and_durations_apply_wakapis_filters(reader: Client) -> None:
    day = datetime.fromtimestamp(yesterday_noon_utc(), UTC).date().isoformat()

    def get(path: str, **params: str) -> Any:
        answer = reader.http.get(path, params=params, headers=basic(reader.api_key))
        assert answer.status_code == 200, (path, params, answer.text)
        return answer.json()

    base = "/api/compat/wakatime/v1/users/current"
    go = get(f"{base}/summaries", start=day, end=day, language="go")
    assert go["cumulative_total"]["seconds"] == 300
    assert [p["name"] for p in go["data"][0]["projects"]] == ["P"]
    assert get(f"{base}/stats/last_7_days", editor="vim")["data"]["total_seconds"] == 300
    assert (
        get("/api/v1/users/current/stats", operating_system="Linux")["data"]["total_seconds"] == 600
    )
    assert get(f"{base}/stats/last_7_days", machine="elsewhere")["data"]["total_seconds"] == 0
    durations = get(f"{base}/durations", date=day, language="Python")["data"]
    assert {d["project"] for d in durations} == {"Q"}
    # A label none of the projects has keeps nothing.
    assert get(f"{base}/stats/last_7_days", label="work")["data"]["total_seconds"] == 0
    # Filters a route does not apply are still refused.
    for path, params in (
        (f"{base}/stats/last_7_days", {"project": "P"}),
        (f"{base}/summaries", {"range": "last_7_days", "category": "coding"}),
    ):
        refused = reader.http.get(path, params=params, headers=basic(reader.api_key))
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "unsupported_filter"
    # Another reader of a public profile gets the whole, never a part.
    anonymous = httpx.get(
        f"{reader.base_url}/api/v1/users/{reader.username}/stats/last_7_days",
        params={"language": "Go"},
    )
    assert anonymous.status_code == 400
    assert anonymous.json()["error"]["details"]["filter"] == "language"


def test_activity_chart_svg(server: CodeTrackrProcess) -> None:
    user = Client(server.url)
    sent = user.http.post(
        "/api/heartbeats",
        json=[waka(yesterday_noon_utc()), waka(yesterday_noon_utc() + 600)],
        headers=basic(user.api_key),
    )
    assert sent.status_code == 201
    settles_at(user, 600)
    path = f"/api/activity/chart/{user.username}.svg"
    mine = user.http.get(path, headers=basic(user.api_key))
    assert mine.status_code == 200, mine.text
    assert mine.headers["content-type"].startswith("image/svg+xml")
    day = datetime.fromtimestamp(yesterday_noon_utc(), UTC).date().isoformat()
    assert f'data-date="{day}" data-level="4"' in mine.text
    # Nobody else sees a private profile's chart, nor an unknown name's: the same 404.
    anonymous = httpx.Client(base_url=server.url, timeout=30)
    private = anonymous.get(path)
    unknown = anonymous.get("/api/activity/chart/nobody-at-all.svg")
    assert private.status_code == unknown.status_code == 404
    assert private.json() == unknown.json()
    for flags, status in (({"is_public": True}, 404), ({"profile_show_activity": True}, 200)):
        updated = user.http.post("/api/v1/user/profile/update", headers=user.bearer, json=flags)
        assert updated.status_code == 200, updated.text
        assert anonymous.get(path).status_code == status
    assert anonymous.get(f"/api/activity/chart/{user.username}.png").status_code == 404


# ---- project aliases and labels -------------------------------------------------------------


def test_project_aliases_and_labels_apply_to_every_read(server: CodeTrackrProcess) -> None:
    user = Client(server.url)
    t0 = yesterday_noon_utc()
    day = datetime.fromtimestamp(t0, UTC).date().isoformat()
    # api-v2 0 -> 120 (and the gap to 300): 300 s; api 300 -> 420 (and to 600): 300 s;
    # site 600 -> 720: 120 s.
    items = [
        waka(t0, project="api-v2"),
        waka(t0 + 120, project="api-v2"),
        waka(t0 + 300, project="api"),
        waka(t0 + 420, project="api"),
        waka(t0 + 600, project="site"),
        waka(t0 + 720, project="site"),
    ]
    assert (
        user.http.post("/api/heartbeats", json=items, headers=basic(user.api_key)).status_code
        == 201
    )
    settles_at(user, 720)

    def put(path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return user.http.put(path, json=body, headers=headers or user.bearer)

    def projects_everywhere() -> list[dict[str, int]]:
        wakapi = keyed(wakapi_summary(user, interval="any").json()["projects"])
        waka_day = user.get("/api/v1/users/current/summaries", start=day, end=day)["data"][0]
        stats = user.get("/api/v1/users/current/stats/last_7_days")["data"]
        ours = user.get("/api/v1/stats/projects", range="7d")["projects"]
        return [
            wakapi,
            {p["name"]: int(p["total_seconds"]) for p in waka_day["projects"]},
            {p["name"]: int(p["total_seconds"]) for p in stats["projects"]},
            {p["project"]: p["seconds"] for p in ours},
        ]

    assert projects_everywhere() == [{"api-v2": 300, "api": 300, "site": 120}] * 4
    aliases = {"aliases": [{"alias": "api-v2", "project": "api"}]}
    assert put("/api/v1/user/project_aliases", aliases).json() == aliases
    assert user.get("/api/v1/user/project_aliases") == aliases
    assert projects_everywhere() == [{"api": 600, "site": 120}] * 4
    # A project filter names the project as aliased (read from the archive: the same rule).
    only_api = user.get("/api/v1/users/current/summaries", start=day, end=day, project="api")
    assert only_api["cumulative_total"]["seconds"] == 600

    labels = {
        "labels": [
            {"project": "api", "labels": ["work"]},
            {"project": "site", "labels": ["work", "fun"]},
        ]
    }
    assert put("/api/v1/user/project_labels", labels).status_code == 200
    assert user.get("/api/v1/user/project_labels") == labels
    summary = wakapi_summary(user, interval="any").json()
    assert keyed(summary["labels"]) == {"work": 720, "fun": 120}
    assert keyed(wakapi_summary(user, interval="any", label="fun").json()["projects"]) == {
        "site": 120
    }
    work = user.get("/api/v1/users/current/summaries", start=day, end=day, label="work")
    assert work["cumulative_total"]["seconds"] == 720
    fun = user.get("/api/v1/users/current/stats/last_7_days", label="fun")["data"]
    assert fun["total_seconds"] == 120
    assert wakapi_summary(user, interval="any", label="nope").json()["projects"] == []

    # Aliases are read-time: removing them brings the names back, past days included.
    assert put("/api/v1/user/project_aliases", {"aliases": []}).status_code == 200
    assert projects_everywhere() == [{"api-v2": 300, "api": 300, "site": 120}] * 4

    for body in (
        {"aliases": [{"alias": "a", "project": "a"}]},
        {"aliases": [{"alias": "a", "project": "b"}, {"alias": "b", "project": "c"}]},
        {"aliases": [{"alias": "a", "project": "b"}, {"alias": "a", "project": "c"}]},
        {"aliases": [{"alias": "", "project": "b"}]},
        {"aliases": "nope"},
    ):
        refused = put("/api/v1/user/project_aliases", body)
        assert refused.status_code == 400, (body, refused.text)
        assert refused.json()["error"]["code"] == "validation_error"
    bad_labels: list[Any] = [
        {"labels": [{"project": "a", "labels": []}]},
        {"labels": [{"project": "a", "labels": ["x", "x"]}]},
        {"labels": [{"project": "a", "labels": ["x" * 65]}]},
    ]
    for body in bad_labels:
        assert put("/api/v1/user/project_labels", body).status_code == 400, body
    ro = user.http.post(
        "/api/v1/keys", headers=user.bearer, json={"name": "ro", "read_only": True}
    ).json()["key"]["key"]
    assert put("/api/v1/user/project_labels", labels, headers={"X-API-Key": ro}).status_code == 403
    assert user.get("/api/v1/user/project_aliases") == {"aliases": []}

    # A label badge needs a public profile that shows its projects.
    badge = f"{server.url}/api/compat/shields/v1/{user.username}/interval:any/label:work"
    flags = {"is_public": True, "profile_show_projects": True}
    assert httpx.get(badge).status_code == 404
    assert put_profile(user, flags).status_code == 200
    assert httpx.get(badge).json()["message"] == "7 mins"  # api 300 + site 120, no alias now


def put_profile(user: Client, flags: dict[str, bool]) -> httpx.Response:
    return user.http.post("/api/v1/user/profile/update", headers=user.bearer, json=flags)


def test_one_project_by_wakapis_id(reader: Client) -> None:
    base = "/api/compat/wakatime/v1/users/current/projects"
    listed = reader.http.get(base, headers=basic(reader.api_key)).json()["data"]
    by_name = {p["name"]: p for p in listed}
    for project_id in ("P", by_name["P"]["id"]):  # Wakapi's id is the name; ours works too
        one = reader.http.get(f"{base}/{project_id}", headers=basic(reader.api_key))
        assert one.status_code == 200, one.text
        assert one.json()["data"] == by_name["P"]
    missing = reader.http.get(f"{base}/nope", headers=basic(reader.api_key))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


# ---- migration: WakaTime's data-dump export --------------------------------------------------


def _upload(user: Client, path: Path) -> httpx.Response:
    def chunks() -> Iterator[bytes]:
        with path.open("rb") as stream:
            while chunk := stream.read(256 * 1024):
                yield chunk

    return user.http.post(
        "/api/v1/import/wakatime",
        content=chunks(),
        headers={**user.key_header, "Content-Type": "application/json"},
        timeout=300,
    )


def test_a_multi_year_wakatime_export_imports_with_exact_totals_and_twice_changes_nothing(
    server: CodeTrackrProcess, tmp_path: Path
) -> None:
    user = Client(server.url)
    days = spread_days(datetime.now(UTC).date() - timedelta(days=2), years=3, every=7)
    copy = {"time": 0.0}  # filled below: a copy of the first day's first heartbeat
    path = tmp_path / "wakatime.json"
    first = days[0]
    with path.open("w") as out:
        probe = io.StringIO()
        write_dump(probe, days[:1], per_day=4)
        copy = json.loads(probe.getvalue())["days"][0]["heartbeats"][0]
        expected = write_dump(
            out,
            days,
            per_day=40,
            extra={first: [copy, {**copy, "time": 12}]},  # a copy, and a time before 2000
        )
    answer = _upload(user, path)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["timezone"] == "America/New_York"
    assert body["days"] == len(days)
    assert body["heartbeats"] == 40 * len(days) + 2
    assert body["rejected"] == 1
    assert body["errors"][0]["date"] == first.isoformat()
    assert "time" in body["errors"][0]["fields"]
    # The copy of a heartbeat of the probe's day: a duplicate if its time matches one of the
    # day's own (the probe wrote the same first heartbeat), else one more heartbeat.
    assert body["duplicates"] == 1
    assert body["imported"] == 40 * len(days)
    total = sum(expected.values())

    def all_time() -> None:
        assert user.summary_total(range="all") == total

    eventually(all_time, timeout_s=120)
    one = days[len(days) // 2]
    assert user.summary_total(start=one.isoformat(), end=one.isoformat()) == expected[one]
    # Editor, OS and machine come from the export's user-agent and machine lists.
    dimensions = user.get("/api/v1/stats/breakdown", range="all")["dimensions"]
    assert [e["name"] for e in dimensions["editor"]] == ["vscode"], dimensions["editor"]
    assert [e["name"] for e in dimensions["os"]] == ["Linux"]
    assert [e["name"] for e in dimensions["machine"]] == ["laptop"]

    again = _upload(user, path)
    assert again.status_code == 200, again.text
    assert again.json()["imported"] == body["imported"]
    # A later heartbeat on the same partition: once it shows, the second import is projected.
    now = datetime.now(UTC).timestamp()
    sent = user.http.post(
        "/api/v1/users/current/heartbeats.bulk",
        json=[waka(now - 120), waka(now - 60)],  # 60 s of coding
        headers=user.key_header,
    )
    assert sent.status_code == 201

    def settled() -> None:
        assert user.summary_total(range="all") == total + 60

    eventually(settled, timeout_s=120)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"days": [{"date": "2024-01-01", "grand_total": {}}]}', "daily-summaries"),
        (b'{"user": {}}', "no `days` list"),
        (b"", "empty body"),
    ],
)
def test_a_file_that_is_not_a_heartbeats_export_is_refused_and_changes_nothing(
    server: CodeTrackrProcess, content: bytes, message: str
) -> None:
    user = Client(server.url)
    answer = user.http.post(
        "/api/v1/import/wakatime",
        content=content,
        headers={**user.key_header, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]["message"]
    assert user.summary_total(range="all") == 0


def test_codetrackr_import_wakatime_and_wakapi_from_the_command_line(
    server: CodeTrackrProcess, tmp_path: Path
) -> None:
    """What a user moving over runs: the export through `codetrackr import wakatime`, a Wakapi
    database through `codetrackr import wakapi`; both twice, the second adding nothing."""
    user = Client(server.url)
    env = {"CODETRACKR_API_URL": server.url, "CODETRACKR_API_KEY": user.api_key}
    days = spread_days(datetime.now(UTC).date() - timedelta(days=3), years=1, every=30)
    export = tmp_path / "export.json"
    expected = sum(dump_file(export, days, per_day=10).values())
    printed = run_cli(["import", "wakatime", str(export), "--quiet"], env=env)
    assert f"{10 * len(days)} heartbeats over {len(days)} days" in printed
    assert f"imported {10 * len(days)}" in printed

    # Wakapi keeps a user's heartbeats in its database: two hours of them, 5 minutes apart.
    start = datetime.combine(days[-1] - timedelta(days=1), time(15), tzinfo=UTC).timestamp()
    rows = [
        {
            "user_id": "alice",
            "entity": "/src/api.rs",
            "type": "file",
            "category": "coding",
            "project": "api",
            "language": "Rust",
            "is_write": 0,
            "editor": "neovim",
            "operating_system": "Linux",
            "machine": "desk",
            "time": start + 300 * i,
        }
        for i in range(25)
    ]
    database = tmp_path / "wakapi.db"
    wakapi_database(database, {"alice": "UTC", "bob": "UTC"}, rows)
    imported = run_cli(
        ["import", "wakapi", str(database), "--wakapi-user", "alice", "--quiet"], env=env
    )
    assert "25 heartbeats over 1 days" in imported
    wakapi_seconds = 24 * 300

    def totals() -> None:
        assert user.summary_total(range="all") == expected + wakapi_seconds

    eventually(totals, timeout_s=120)
    run_cli(["import", "wakatime", str(export), "--quiet"], env=env)
    run_cli(["import", "wakapi", str(database), "--wakapi-user", "alice", "--quiet"], env=env)
    sent = user.http.post(
        "/api/v1/users/current/heartbeats.bulk",
        json=[waka(start - 7200), waka(start - 7140)],  # 60 s more, on the same partition
        headers=user.key_header,
    )
    assert sent.status_code == 201

    def settled() -> None:
        assert user.summary_total(range="all") == expected + wakapi_seconds + 60

    eventually(settled, timeout_s=120)
    with pytest.raises(RuntimeError, match="no Wakapi user 'carol'"):
        run_cli(["import", "wakapi", str(database), "--wakapi-user", "carol"], env=env)


def test_ingest_rules_drop_and_map_heartbeats_as_they_arrive(server: CodeTrackrProcess) -> None:
    user = Client(server.url)
    rules = {
        "ignore": ["*/secret/*", "client-*"],
        "language_mappings": [{"extension": ".tmpl", "language": "Go"}],
    }
    put = user.http.put("/api/v1/user/ingest_rules", json=rules, headers=user.bearer)
    assert put.status_code == 200, put.text
    assert put.json()["heartbeats_ignored"] == 0
    bad = user.http.put(
        "/api/v1/user/ingest_rules",
        json={"language_mappings": [{"extension": "tmpl", "language": "Go"}]},
        headers=user.bearer,
    )
    assert bad.status_code == 400
    assert "not a file extension" in bad.json()["error"]["message"]

    t = yesterday_noon_utc()
    beats = [
        waka(t, "/src/page.tmpl", language="HTML"),
        waka(t + 60, "/src/page.tmpl", language="HTML"),
        waka(t + 120, "/home/me/secret/diary.md"),
        waka(t + 180, "/src/other.go", project="client-acme"),
        waka(t + 240, "/src/page.tmpl", language="HTML"),
    ]
    sent = user.http.post(
        "/api/v1/users/current/heartbeats.bulk", json=beats, headers=user.key_header
    )
    assert sent.status_code == 201, sent.text
    assert len(sent.json()["responses"]) == 5  # answered like any other: nothing to retry

    def dropped_and_mapped() -> None:
        assert total_yesterday(user) == 240  # gaps between kept heartbeats: 60 + 180
        dimensions = user.get("/api/v1/stats/breakdown", range="7d")["dimensions"]
        assert [e["name"] for e in dimensions["language"]] == ["Go"]
        assert [e["name"] for e in dimensions["project"]] == ["P"]

    eventually(dropped_and_mapped, timeout_s=60)
    rules_now = user.get("/api/v1/user/ingest_rules")
    assert rules_now["heartbeats_ignored"] == 2
    assert rules_now["language_mappings"] == [{"extension": ".tmpl", "language": "Go"}]
