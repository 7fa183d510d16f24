"""``codetrackr serve`` on embedded defaults, driven over HTTP as editors and dashboards do."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.e2e.harness import Client, CodeTrackrProcess, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]

TZ = "Europe/Berlin"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeTrackrProcess]:
    proc = CodeTrackrProcess("serve", tmp_path_factory.mktemp("serve") / "data").start()
    yield proc
    proc.stop()


def yesterday_noon(tz: str = TZ) -> float:
    now = datetime.now(ZoneInfo(tz))
    noon = (now - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    return noon.timestamp()


def waka(
    t: float, project: str, entity: str = "/src/main.py", **extra: object
) -> dict[str, object]:
    return {
        "entity": entity,
        "type": "file",
        "time": t,
        "project": project,
        "language": "Python",
        **extra,
    }


def test_new_user_gets_reference_time_from_both_dialects_including_late_and_duplicates(
    server: CodeTrackrProcess,
) -> None:
    check_reference_time(server.url, server.url)


def check_reference_time(api_url: str, ingest_url: str, *, timeout_s: float = 30.0) -> None:
    """The reference rule through the whole system: accounts and reads on ``api_url``,
    heartbeats (both dialects, duplicates, a late one) on ``ingest_url``."""
    user = Client(api_url, timezone=TZ)
    t0 = yesterday_noon()
    bulk = [waka(t0, "A"), waka(t0 + 60, "A"), waka(t0 + 120, "A"), waka(t0 + 600, "B")]
    sent = user.http.post(
        f"{ingest_url}/api/v1/users/current/heartbeats.bulk",
        json=bulk,
        headers={"Authorization": "Basic " + base64.b64encode(user.api_key.encode()).decode()},
    )
    assert sent.status_code == 201, sent.text
    assert [status for _, status in sent.json()["responses"]] == [201, 201, 201, 201]
    # The CodeTrackr dialect, zero-length heartbeats: same rule, same kind of time.
    ct = [
        {
            "project": "B",
            "file": "/src/main.py",
            "lang": "Python",
            "time": t0 + 2000,
            "duration": 0,
        },
        {
            "project": "B",
            "file": "/src/main.py",
            "lang": "Python",
            "time": t0 + 2100,
            "duration": 0,
        },
    ]
    sent = user.http.post(f"{ingest_url}/api/v1/heartbeats", json=ct, headers=user.key_header)
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"status": "ok", "inserted": 2}

    # Reference rule, 15-minute timeout: A gets 0:00-0:10 (600 s, the gap to B goes to A);
    # B at 0:10 is alone (the next is 1400 s later), then 2000-2100 adds 100 s.
    def first_total() -> None:
        assert user.summary_total() == 700
        languages = user.get("/api/v1/stats/languages")
        assert languages["languages"][0]["language"] == "Python"

    eventually(first_total, timeout_s=timeout_s)
    projects = {p["project"]: p["seconds"] for p in user.get("/api/v1/stats/projects")["projects"]}
    assert projects == {"A": 600, "B": 100}
    # The dashboard's one read of every dimension agrees with the per-dimension routes.
    breakdown = user.get("/api/v1/stats/breakdown")
    assert breakdown["total_seconds"] == 700
    assert breakdown["dimensions"]["project"] == [
        {"name": "A", "seconds": 600, "percentage": 85.71},
        {"name": "B", "seconds": 100, "percentage": 14.29},
    ]
    assert breakdown["dimensions"]["language"][0]["name"] == "Python"
    assert set(breakdown["dimensions"]) == {
        "language",
        "project",
        "editor",
        "os",
        "machine",
        "branch",
        "category",
    }
    top = user.get("/api/v1/stats/breakdown", limit=1)["dimensions"]["project"]
    assert [p["name"] for p in top] == ["A"]

    # Redelivered duplicates change nothing; a late heartbeat in the gap joins the runs.
    again = user.http.post(
        f"{ingest_url}/api/v1/users/current/heartbeats.bulk", json=bulk, headers=user.key_header
    )
    assert again.status_code == 201
    late = user.http.post(
        f"{ingest_url}/api/v1/users/current/heartbeats",
        json=waka(t0 + 1200, "B"),
        headers=user.key_header,
    )
    assert late.status_code == 201, late.text
    assert late.json()["data"]["project"] == "B"
    # Now 600 (A) + B: 600->1200 (600 s) + 1200->2000 (800 s) + 2000->2100 (100 s) = 2100.
    eventually(lambda: _assert_equal(user.summary_total(), 2100), timeout_s=timeout_s)
    day = datetime.fromtimestamp(t0, ZoneInfo(TZ)).date().isoformat()
    daily = {d["date"]: d["seconds"] for d in user.get("/api/v1/stats/daily")["daily"]}
    assert daily[day] == 2100
    assert len(daily) == 7
    summary = user.get("/api/v1/stats/summary", range="30d")
    assert summary["top_project"] == "B"
    assert summary["streak_longest"] >= 1


def _assert_equal(a: object, b: object) -> None:
    assert a == b


def test_every_credential_form_authenticates(server: CodeTrackrProcess) -> None:
    user = Client(server.url)
    key = user.api_key
    b64 = base64.b64encode
    forms = [
        ({"X-API-Key": key}, {}),
        ({}, {"api_key": key}),
        ({"Authorization": f"Bearer {key}"}, {}),
        ({"Authorization": f"Bearer {user.token}"}, {}),
        ({"Authorization": f"Bearer {b64(key.encode()).decode()}"}, {}),
        ({"Authorization": f"Basic {b64(key.encode()).decode()}"}, {}),
        ({"Authorization": f"Basic {b64((key + ':').encode()).decode()}"}, {}),
    ]
    for headers, params in forms:
        response = user.http.get("/api/v1/user/me", headers=headers, params=params)
        assert response.status_code == 200, (headers, params, response.text)
        assert response.json()["username"] == user.username


def test_bad_credentials_get_401_in_the_envelope(server: CodeTrackrProcess) -> None:
    http = httpx.Client(base_url=server.url)
    for headers in (
        {},
        {"X-API-Key": "00000000-0000-4000-8000-000000000000"},
        {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.bad"},
        {"Authorization": "Digest x"},
    ):
        response = http.post("/api/v1/heartbeat", json={"project": "p"}, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"


def test_bad_input_gets_a_clear_error_and_changes_nothing(server: CodeTrackrProcess) -> None:
    user = Client(server.url)
    http, headers = user.http, user.key_header
    malformed = http.post(
        "/api/v1/heartbeats", content=b"[{", headers={**headers, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "invalid_json"
    invalid = http.post(
        "/api/v1/heartbeats", json=[{"project": "p"}, {"file": "x"}], headers=headers
    )
    assert invalid.status_code == 400
    assert "1.project" in invalid.json()["error"]["details"]["fields"]
    huge = http.post(
        "/api/v1/heartbeats", content=b"[" + b" " * (3 * 1024 * 1024) + b"]", headers=headers
    )
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "payload_too_large"
    nothing_valid = http.post(
        "/api/v1/users/current/heartbeats.bulk", json=[{"entity": "x"}], headers=headers
    )
    assert nothing_valid.status_code == 400
    unknown = http.get("/api/v1/nope", headers=headers)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    # None of the rejected requests recorded anything.
    assert user.summary_total(range="all") == 0
    assert user.get("/api/v1/stats/projects", range="all")["projects"] == []


def test_bulk_answers_per_item_and_records_only_valid_items(server: CodeTrackrProcess) -> None:
    user = Client(server.url)
    t0 = yesterday_noon()
    items = [waka(t0, "P"), {"entity": "x", "time": "soon"}, waka(1.0, "P"), waka(t0 + 300, "P")]
    response = user.http.post(
        "/api/v1/users/current/heartbeats.bulk", json=items, headers=user.key_header
    )
    assert response.status_code == 201
    statuses = [status for _, status in response.json()["responses"]]
    assert statuses == [201, 400, 400, 201]
    assert "time" in response.json()["responses"][1][0]["error"]
    eventually(lambda: _assert_equal(user.summary_total(), 300))


def test_keys_are_shown_once_capped_and_revocable(server: CodeTrackrProcess) -> None:
    user = Client(server.url)
    listed = user.get("/api/v1/keys")["keys"]
    assert len(listed) == 1
    assert "key" not in listed[0]
    assert user.api_key.startswith(listed[0]["key_prefix"])
    new_keys = []
    for i in range(4):
        made = user.http.post("/api/v1/keys", json={"name": f"k{i}"}, headers=user.bearer)
        assert made.status_code == 200
        new_keys.append(made.json()["key"])
        # A key works on the very next request.
        me = user.http.get("/api/v1/user/me", headers={"X-API-Key": new_keys[-1]["key"]})
        assert me.status_code == 200
    sixth = user.http.post("/api/v1/keys", json={}, headers=user.bearer)
    assert sixth.status_code == 409
    assert sixth.json()["error"]["code"] == "key_limit"
    # A key cannot manage keys; only a login token can.
    assert user.http.get("/api/v1/keys", headers=user.key_header).status_code == 401
    gone = user.http.delete(f"/api/v1/keys/{new_keys[0]['id']}", headers=user.bearer)
    assert gone.status_code == 200
    revoked = user.http.get("/api/v1/user/me", headers={"X-API-Key": new_keys[0]["key"]})
    assert revoked.status_code == 401
    other = Client(server.url)
    stolen = other.http.delete(f"/api/v1/keys/{new_keys[1]['id']}", headers=other.bearer)
    assert stolen.status_code == 404


def test_login_by_account_number_and_users_see_only_their_data(server: CodeTrackrProcess) -> None:
    alice, bob = Client(server.url), Client(server.url)
    login = httpx.post(
        f"{server.url}/auth/anonymous/login", json={"account_number": alice.account_number}
    )
    assert login.status_code == 200
    assert login.json()["username"] == alice.username
    wrong = httpx.post(f"{server.url}/auth/anonymous/login", json={"account_number": "A0"})
    assert wrong.status_code == 401
    t0 = yesterday_noon()
    sent = alice.http.post(
        "/api/v1/heartbeats",
        json=[{"project": "secret", "time": t0, "duration": 120}],
        headers=alice.key_header,
    )
    assert sent.status_code == 200
    eventually(lambda: _assert_equal(alice.summary_total(), 120))
    assert bob.summary_total(range="all") == 0
    forbidden = bob.http.post(
        f"/api/v1/users/{alice.username}/heartbeats", json=waka(t0, "x"), headers=bob.key_header
    )
    assert forbidden.status_code == 403


def test_openapi_schema_is_served(server: CodeTrackrProcess) -> None:
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert "/api/v1/users/{user}/heartbeats.bulk" in schema["paths"]
    assert "/api/v1/stats/summary" in schema["paths"]
