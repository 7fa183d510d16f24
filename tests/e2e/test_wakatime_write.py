"""The WakaTime write API of a real ``codetrackr serve``, over HTTP as clients use it.

The bulk contract wakatime-cli's offline queue depends on (one answer per item, a stale or
invalid item answered 400 inside a 201, the whole request failing only when nothing is valid or
auth fails), metadata from the request headers, the path aliases, the diagnostics endpoints, and
``DELETE .../heartbeats.bulk``: only the caller's heartbeats disappear, from stats at once and for
good (a re-sent heartbeat stays deleted), and a replay of the log rebuilds the same tables.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from http_edge.compat import aliased_paths
from tests.e2e.harness import (
    Client,
    CodeTrackrProcess,
    eventually,
    query_scalar,
    run_cli,
    snapshot_tables,
)

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]

UA = "wakatime/v1.90.0 (linux-6.8.0-x86_64) go1.22.1 vscode/1.85.0 vscode-wakatime/24.5.0"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeTrackrProcess]:
    proc = CodeTrackrProcess("serve", tmp_path_factory.mktemp("waka-write") / "data").start()
    yield proc
    proc.stop()


def yesterday_noon_utc() -> float:
    now = datetime.now(UTC)
    return (now - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0).timestamp()


def waka(t: float, entity: str = "/src/main.py", **extra: Any) -> dict[str, Any]:
    return {"entity": entity, "type": "file", "time": t, "project": "P", "language": "Go", **extra}


def bulk(user: Client, items: Any, *, path: str = "/api/v1", **headers: str) -> httpx.Response:
    return user.http.post(
        f"{path}/users/current/heartbeats.bulk", json=items, headers={**user.key_header, **headers}
    )


def delete(user: Client, body: Any, *, name: str = "current", path: str = "/api/v1") -> Any:
    return user.http.request(
        "DELETE", f"{path}/users/{name}/heartbeats.bulk", json=body, headers=user.key_header
    )


def settles_at(user: Client, total: int) -> None:
    eventually(lambda: _assert_equal(user.summary_total(range="7d"), total), timeout_s=60)


def _assert_equal(a: object, b: object) -> None:
    assert a == b


def test_bulk_answers_every_item_and_counts_duplicates_once(server: CodeTrackrProcess) -> None:
    user = Client(server.url)
    t0 = yesterday_noon_utc()
    items = [
        waka(t0),
        waka(946684799.0),  # before 2000: stale
        waka(time.time() + 3 * 86400),  # days in the future
        {"type": "file", "time": t0},  # no entity
        42,  # not an object
        waka(t0),  # a duplicate within the batch
        waka(
            t0 + 60,
            lineno="12",
            cursorpos="7",
            lines="300",
            line_additions="4",
            is_write="true",
            project_root_count="2",
            whatever={"clients": "add fields"},
        ),
        waka(t0 + 120, is_write=0),
    ]
    response = bulk(user, items)
    assert response.status_code == 201, response.text
    answers = response.json()["responses"]
    assert [status for _, status in answers] == [201, 400, 400, 400, 400, 201, 201, 201]
    assert "2000" in answers[1][0]["error"]
    assert "future" in answers[2][0]["error"]
    assert "entity" in answers[3][0]["error"]
    assert all(set(body) == {"error"} for body, status in answers if status == 400)
    first, duplicate, coerced = answers[0][0]["data"], answers[5][0]["data"], answers[6][0]["data"]
    assert first["id"] == duplicate["id"]
    assert (coerced["lineno"], coerced["cursorpos"], coerced["lines"]) == (12, 7, 300)
    assert (coerced["line_additions"], coerced["project_root_count"]) == (4, 2)
    assert coerced["is_write"] is True
    assert answers[7][0]["data"]["is_write"] is False
    assert "whatever" not in coerced
    settles_at(user, 120)

    # The same batch again, then one new heartbeat: once that one counts, the repeats have been
    # projected too (one user's records stay in order), and they added nothing.
    assert bulk(user, items).status_code == 201
    assert bulk(user, [waka(t0 + 180)]).status_code == 201
    settles_at(user, 180)


def test_whole_request_fails_only_when_nothing_is_valid_or_auth_fails(
    server: CodeTrackrProcess,
) -> None:
    user = Client(server.url)
    t0 = yesterday_noon_utc()
    nothing_valid = bulk(user, [waka(1.0), {"time": t0}])
    assert nothing_valid.status_code == 400
    error = nothing_valid.json()["error"]
    assert error["code"] == "validation_error"
    assert {"0.time", "1.entity"} <= set(error["details"]["fields"])
    assert bulk(user, []).status_code == 400
    single = user.http.post(
        "/api/v1/users/current/heartbeats", json=waka(1.0), headers=user.key_header
    )
    assert single.status_code == 400
    assert "time" in single.json()["error"]["details"]["fields"]
    anonymous = httpx.post(f"{server.url}/api/v1/users/current/heartbeats.bulk", json=[waka(t0)])
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    other = Client(server.url)
    stolen = user.http.post(
        f"/api/v1/users/{other.username}/heartbeats.bulk", json=[waka(t0)], headers=user.key_header
    )
    assert stolen.status_code == 403
    by_name = user.http.post(
        f"/api/v1/users/{user.username.upper()}/heartbeats.bulk",
        json=[waka(t0)],
        headers=user.key_header,
    )
    assert by_name.status_code == 201
    assert other.summary_total(range="7d") == 0


def test_headers_give_machine_user_agent_and_timezone_when_the_user_has_none(
    server: CodeTrackrProcess,
) -> None:
    # 23:00 UTC yesterday is 08:00 today in Tokyo: the day the Timezone header decides.
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    t = (midnight - timedelta(hours=1)).timestamp()
    today, yesterday = midnight.date().isoformat(), (midnight - timedelta(days=1)).date()
    headers = {"User-Agent": UA, "X-Machine-Name": "build-box", "Timezone": "Asia/Tokyo"}
    # A user with a timezone of their own (UTC-3: 20:00 yesterday) keeps it.
    unset, own = Client(server.url), Client(server.url, timezone="Etc/GMT+3")
    for user in (unset, own):
        response = bulk(user, [waka(t), waka(t + 60)], **headers)
        assert response.status_code == 201, response.text
        data = response.json()["responses"][0][0]["data"]
        assert (data["machine_name_id"], data["user_agent_id"]) == ("build-box", UA)

    def days(user: Client) -> dict[str, int]:
        daily = user.get("/api/v1/stats/daily", range="7d")["daily"]
        return {d["date"]: d["seconds"] for d in daily if d["seconds"]}

    eventually(lambda: _assert_equal(days(unset), {today: 60}), timeout_s=60)
    eventually(lambda: _assert_equal(days(own), {yesterday.isoformat(): 60}), timeout_s=60)


def test_write_endpoints_answer_under_every_alias_and_only_canonical_paths_are_documented(
    server: CodeTrackrProcess,
) -> None:
    user = Client(server.url)
    t0 = yesterday_noon_utc()
    bases = aliased_paths("")
    for i, base in enumerate(bases):
        sent = bulk(user, [waka(t0 + i * 60)], path=base)
        assert sent.status_code == 201, (base, sent.text)
        one = user.http.post(
            f"{base}/users/current/heartbeats", json=waka(t0 + i * 60 + 30), headers=user.key_header
        )
        assert one.status_code == 201, (base, one.text)
        experts = user.http.post(
            f"{base}/users/current/file_experts",
            json={"entity": "/src/main.py", "project": "P", "project_root_count": 2},
            headers=user.key_header,
        )
        assert (experts.status_code, experts.json()) == (200, {"data": []}), base
        report = user.http.post(
            f"{base}/plugins/errors",
            json={"plugin": "vscode-wakatime", "logs": "x" * 10_000, "is_panic": False},
            headers=user.key_header,
        )
        assert (report.status_code, report.json()) == (201, {}), base
        bad = delete(user, {"date": "yesterday", "ids": []}, path=base)
        assert bad.status_code == 400, base
    # Three bases, two heartbeats each, 30 s apart: 2.5 minutes.
    settles_at(user, 150)
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    for path in ("/users/{user}/heartbeats.bulk", "/users/{user}/file_experts", "/plugins/errors"):
        canonical, *aliases = aliased_paths(path)
        assert canonical in paths
        assert not set(aliases) & set(paths)
    assert set(paths["/api/v1/users/{user}/heartbeats.bulk"]) == {"post", "delete"}


def test_diagnostics_endpoints_need_auth_and_valid_json(server: CodeTrackrProcess) -> None:
    user = Client(server.url)
    for path in ("/api/v1/plugins/errors", "/api/v1/users/current/file_experts"):
        assert httpx.post(f"{server.url}{path}", json={}).status_code == 401
    other = Client(server.url)
    assert (
        user.http.post(
            f"/api/v1/users/{other.username}/file_experts", json={}, headers=user.key_header
        ).status_code
        == 403
    )
    malformed = user.http.post(
        "/api/v1/plugins/errors",
        content=b"{",
        headers={**user.key_header, "Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
    not_an_object = user.http.post("/api/v1/plugins/errors", json=[1], headers=user.key_header)
    assert not_an_object.status_code == 400
    huge = user.http.post(
        "/api/v1/plugins/errors",
        content=b'"' + b"x" * (3 * 1024 * 1024) + b'"',
        headers={**user.key_header, "Content-Type": "application/json"},
    )
    assert huge.status_code == 413


def spaced(t0: float) -> list[dict[str, Any]]:
    """Four heartbeats: 0, 600, 1200, 1260 s. All count (1260 s); without the second, the gap
    from the first to the third (1200 s) passes the 15-minute timeout, leaving 60 s."""
    return [waka(t0 + offset) for offset in (0, 600, 1200, 1260)]


def test_delete_removes_only_the_callers_heartbeats_for_good(server: CodeTrackrProcess) -> None:
    alice, bob = Client(server.url), Client(server.url)
    t0 = yesterday_noon_utc()
    day = datetime.fromtimestamp(t0, UTC).date().isoformat()
    sent = bulk(alice, spaced(t0))
    ids = [answer[0]["data"]["id"] for answer in sent.json()["responses"]]
    bob_sent = bulk(bob, [waka(t0), waka(t0 + 60)])
    bob_ids = [answer[0]["data"]["id"] for answer in bob_sent.json()["responses"]]
    settles_at(alice, 1260)
    settles_at(bob, 60)

    # Alice deletes her second heartbeat, and tries Bob's ids (stolen or guessed) and junk.
    response = delete(alice, {"date": day, "ids": [ids[1], *bob_ids, "junk", ids[1]]})
    assert response.status_code == 202, response.text
    assert response.json() == {"data": {"date": day, "ids": [ids[1], *bob_ids, "junk"]}}
    settles_at(alice, 60)
    assert bob.summary_total(range="7d") == 60

    # Re-sent (an offline queue replaying it), the deleted heartbeat stays deleted; the new
    # heartbeat after it shows when the re-sent batch has been projected.
    assert bulk(alice, [*spaced(t0), waka(t0 + 1320)]).status_code == 201
    settles_at(alice, 120)

    # A date without those heartbeats deletes nothing.
    assert delete(alice, {"date": "2001-01-01", "ids": [ids[2]]}).status_code == 202
    assert bulk(alice, [waka(t0 + 1380)]).status_code == 201
    settles_at(alice, 180)


def test_delete_refuses_bad_requests(server: CodeTrackrProcess) -> None:
    user = Client(server.url)
    other = Client(server.url)
    day = datetime.now(UTC).date().isoformat()
    assert delete(user, {"date": day, "ids": ["a"]}, name=other.username).status_code == 403
    anonymous = httpx.request(
        "DELETE",
        f"{server.url}/api/v1/users/current/heartbeats.bulk",
        json={"date": day, "ids": ["a"]},
    )
    assert anonymous.status_code == 401
    for body, field in (
        ({"date": "30.03.2024", "ids": ["a"]}, "date"),
        ({"date": "1900-01-01", "ids": ["a"]}, "date"),
        ({"date": day}, "ids"),
        ({"date": day, "ids": ["a", None]}, "ids.1"),
        (["a"], "body"),
    ):
        refused = delete(user, body)
        assert refused.status_code == 400, body
        assert field in refused.json()["error"]["details"]["fields"], body
    too_many = delete(user, {"date": day, "ids": [f"id{i}" for i in range(10_001)]})
    assert too_many.status_code == 413
    assert delete(user, {"date": day, "ids": []}).status_code == 202


def test_replay_after_deletes_rebuilds_the_live_tables(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tz = ZoneInfo("America/Mexico_City")
    t0 = yesterday_noon_utc()
    day = datetime.fromtimestamp(t0, tz).date().isoformat()
    earlier_t = t0 - 86400
    earlier = datetime.fromtimestamp(earlier_t, tz).date().isoformat()
    headers = {"User-Agent": UA, "X-Machine-Name": "box"}
    server = CodeTrackrProcess("serve", data).start()
    try:
        user = Client(server.url, timezone="America/Mexico_City")
        sent = bulk(user, spaced(t0), **headers)
        ids = [answer[0]["data"]["id"] for answer in sent.json()["responses"]]
        sent = bulk(user, [waka(earlier_t), waka(earlier_t + 60)], **headers)
        earlier_ids = [answer[0]["data"]["id"] for answer in sent.json()["responses"]]
        settles_at(user, 1260 + 60)
        assert delete(user, {"date": day, "ids": [ids[1]]}).status_code == 202
        # Every heartbeat of the earlier day deleted: that day reads as zero.
        assert delete(user, {"date": earlier, "ids": earlier_ids}).status_code == 202
        # The original batch, re-sent after the delete, does not bring it back.
        assert bulk(user, [*spaced(t0), waka(t0 + 1320)], **headers).status_code == 201
        settles_at(user, 120)
    finally:
        server.stop()
    url = f"chdb://{(data / 'clickhouse').resolve()}"
    live = snapshot_tables(url)
    assert len(live["heartbeat_deletions"]) == 3
    zero_days = [row for row in live["daily_stats"] if row[1] == earlier]
    assert [row[3:5] for row in zero_days] == [["0.0", "0"]]
    metadata = query_scalar(
        url,
        "SELECT concat(editor, '|', os, '|', plugin, '|', machine, '|', timezone)"
        f" FROM codetrackr.heartbeats FINAL WHERE event_id = '{ids[0]}'",
    )
    assert metadata == "vscode|Linux|vscode-wakatime|box|America/Mexico_City"
    run_cli(["replay", "--data-dir", str(data), "--quiet"])
    assert snapshot_tables(url) == live
