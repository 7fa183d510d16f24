"""Wakapi's API on a real ``codetrackr serve`` (and the ``ingest`` role), over HTTP as Wakapi's
clients use it: heartbeat ingest on every path Wakapi serves, with Wakapi's answers and auth.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ingest.wakapi import WAKAPI_PATHS, WAKAPI_USER_PATHS
from tests.e2e.harness import Client, CodeTrackrProcess, eventually

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
    finally:
        ingest.stop()
