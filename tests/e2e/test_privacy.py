"""Privacy flags on every public surface of a real ``codetrackr serve``.

One user is public, ranked on the leaderboards and available for hire, with every
``profile_show_*`` flag off, and codes in a language, project, branch and machine nobody else
uses. Every GET route of the app's route table (read from the app itself, so a new route is
walked without anybody listing it) is requested anonymously and by another logged-in user, with
that user in every user slot: no answer may name what the flags hide. A request that itself
names a hidden value (a language board, a shields spec) must answer exactly as it does for a
value the user never used.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import Client, CodeTrackrProcess, _python, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]

# Decoys: the same letters reordered (badges size themselves to the widths of the letters).
LANGUAGE, DECOY_LANGUAGE = "Haskell", "Hsakell"
PROJECT, DECOY_PROJECT = "zz-hidden-project", "zz-hdiden-project"
MARKERS = (LANGUAGE, PROJECT, "hidden-branch", "hidden-machine", "hidden-entity")
DECOYS = {LANGUAGE: DECOY_LANGUAGE, PROJECT: DECOY_PROJECT}

_ROUTES = """
import json, sys, pathlib
from fastapi.routing import iter_route_contexts
from codetrackr.bootstrap import create_app
from codetrackr.settings import Settings
app = create_app(Settings(data_dir=pathlib.Path(sys.argv[1])), "serve")
print(json.dumps(sorted({(c.path_format, m) for c in iter_route_contexts(app.routes)
                         for m in (getattr(c, "methods", None) or ())})))
"""

# What each path parameter is set to (several values: each one is walked). A route with a
# parameter missing here fails the walk: decide what it should be tested with.
_BADGE_METRICS = ["coding-time", "today", "streak", "top-language", "all-time"]


def _param_values(name: str, user: Client) -> list[str]:
    table: dict[str, list[str]] = {
        "user": [user.username],
        "username": [user.username],
        "range": ["last_7_days", "all_time"],
        "lang": [LANGUAGE],
        "metric": _BADGE_METRICS,
        "spec": [f"interval:last_7_days/language:{LANGUAGE}", f"project:{PROJECT}", ""],
        "country": ["NZ"],
        "insight_type": ["languages", "projects"],
        "goal_id": ["g1"],
        "provider": ["github"],
        "name": ["streak-counter"],  # a plugin of the store
        "theme_id": ["00000000-0000-4000-8000-000000000000"],  # a theme nobody published
    }
    if name not in table:
        raise AssertionError(f"no test value for path parameter {{{name}}}: add one to the walk")
    return table[name]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeTrackrProcess]:
    # The walk sends a few thousand requests in seconds from one address: no rate limits here.
    proc = CodeTrackrProcess(
        "serve",
        tmp_path_factory.mktemp("privacy") / "data",
        env={"CODETRACKR_RATE_LIMIT_ENABLED": "false"},
    ).start()
    yield proc
    proc.stop()


def _routes(tmp: Path) -> list[tuple[str, str]]:
    return [tuple(r) for r in json.loads(_python(_ROUTES, str(tmp)))]  # type: ignore[misc]


def _expand(path: str, user: Client) -> list[str]:
    names = re.findall(r"{(\w+)(?::\w+)?}", path)
    paths = [path]
    for name in names:
        pattern = re.compile(r"{" + name + r"(?::\w+)?}")
        paths = [pattern.sub(value, p) for p in paths for value in _param_values(name, user)]
    return paths


_VOLATILE = re.compile(
    rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?|\d+ (second|minute)s? ago"
)


def _masked(body: bytes, value: str) -> bytes:
    return _VOLATILE.sub(b"<t>", body.replace(value.encode(), b"<v>"))


def _setup_hidden_user(server: CodeTrackrProcess) -> Client:
    hidden = Client(server.url, timezone="UTC")
    flags = {
        "is_public": True,
        "show_in_leaderboard": True,
        "available_for_hire": True,
        "country": "NZ",
        "profile_show_languages": False,
        "profile_show_projects": False,
        "profile_show_activity": False,
        "profile_show_plugins": False,
        "profile_show_streak": False,
    }
    changed = hidden.http.post("/api/v1/user/profile/update", headers=hidden.bearer, json=flags)
    assert changed.status_code == 200, changed.text
    now = time.time()
    beats = [
        {
            "entity": "/src/hidden-entity.hs",
            "type": "file",
            "time": now - 600 + i * 60,
            "project": PROJECT,
            "language": LANGUAGE,
            "branch": "hidden-branch",
            "is_write": True,
        }
        for i in range(10)
    ]
    auth = {
        "Authorization": "Basic " + base64.b64encode(hidden.api_key.encode()).decode(),
        "X-Machine-Name": "hidden-machine",
    }
    sent = hidden.http.post("/api/v1/users/current/heartbeats.bulk", json=beats, headers=auth)
    assert sent.status_code == 201, sent.text
    return hidden


def _leak(http: httpx.Client, who: str, url: str, query: dict[str, str]) -> str | None:
    """What ``who`` learns from ``GET url?query`` that the flags hide (None: nothing)."""
    answer = http.get(url, params=query)
    where = f"{who}: GET {url} {query} -> {answer.status_code}"
    if answer.status_code >= 500:
        return where
    asked = [m for m in DECOYS if m in url or m in query.values()]
    if not asked:
        shown = [m for m in MARKERS if m.encode() in answer.content]
        return f"{where} shows {shown}" if shown else None
    # The request names a hidden value itself: the answer must not depend on it.
    value, decoy_value = asked[0], DECOYS[asked[0]]
    decoy = http.get(
        url.replace(value, decoy_value),
        params={k: v.replace(value, decoy_value) for k, v in query.items()},
    )
    if decoy.status_code != answer.status_code or _masked(answer.content, value) != _masked(
        decoy.content, decoy_value
    ):
        return f"{where}: answers differently for a value the user never used"
    return None


def test_no_public_route_shows_what_privacy_flags_hide(
    server: CodeTrackrProcess, tmp_path: Path
) -> None:
    hidden = _setup_hidden_user(server)
    viewer = Client(server.url, timezone="UTC")

    def ranked() -> None:
        body = httpx.get(f"{server.url}/api/v1/leaderboards/global", timeout=30).json()
        assert hidden.username in {e["username"] for e in body["leaderboard"]}
        # The owner sees their own language: the data is there to leak.
        mine = hidden.get("/api/v1/users/current/stats/last_7_days")["data"]["languages"]
        assert LANGUAGE in {entry["name"] for entry in mine}

    eventually(ranked, timeout_s=60)

    routes = [path for path, method in _routes(tmp_path) if method == "GET"]
    assert len(routes) > 40  # the walk really covers the API
    requests = [
        (who, url, query)
        for who in ("anonymous", "another user")
        for path in routes
        for url in _expand(path, hidden)
        # Also ask for each hidden value as a filter, as a curious caller would.
        for query in ({}, {"language": LANGUAGE}, {"project": PROJECT})
    ]
    assert len(requests) > 200
    with (
        httpx.Client(base_url=server.url, timeout=30) as anonymous,
        httpx.Client(base_url=server.url, timeout=30, headers=viewer.bearer) as other,
        ThreadPoolExecutor(4) as pool,
    ):
        clients = {"anonymous": anonymous, "another user": other}
        failures = [
            f for f in pool.map(lambda r: _leak(clients[r[0]], *r), requests) if f is not None
        ]
    assert failures == [], "\n".join(failures[:20])

    # The numbers the activity and streak flags hide, on the surfaces that carry them.
    profile = httpx.get(f"{server.url}/api/v1/user/profile/{hidden.username}", timeout=30).json()
    assert profile["weekly_seconds"] == 0
    assert profile["streak_days"] == 0
    assert profile["languages"] == []
    assert profile["projects"] == []
    for badge in ("heatmap", "streak", "top-language"):
        svg = httpx.get(f"{server.url}/badge/{hidden.username}/{badge}", timeout=30).text
        assert "hidden" in svg.lower(), badge
