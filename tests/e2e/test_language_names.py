"""Language names on a real ``codetrackr serve``: ``Python``, ``python`` and ``PYTHON`` sent
through both dialects are one ``Python`` in stats, summaries, boards and badges, heartbeats
without a language are one ``Other``, and the export keeps what each client sent.

Every read waits (bounded) for the processors to catch up.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Client, CodeTrackrProcess, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]

# WakaTime heartbeats a minute apart, in the order sent (None: no language field at all).
SPELLINGS: list[str | None] = ["Python", "python", "PYTHON", None, "", "Python"]
PYTHON_S = 3 * 60 + 4 * 60 + 60  # three minutes, the gap to the CodeTrackr one, its duration
OTHER_S = 2 * 60


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeTrackrProcess]:
    proc = CodeTrackrProcess("serve", tmp_path_factory.mktemp("languages") / "data").start()
    yield proc
    proc.stop()


def publish(user: Client) -> None:
    body = {"is_public": True, "show_in_leaderboard": True, "profile_show_languages": True}
    changed = user.http.post("/api/v1/user/profile/update", headers=user.bearer, json=body)
    assert changed.status_code == 200, changed.text


def record(user: Client) -> None:
    # Early today (UTC): in today's stats and this week's boards whenever the test runs.
    t0 = datetime.now(UTC).replace(hour=0, minute=1, second=0, microsecond=0).timestamp()
    waka: list[dict[str, Any]] = []
    for i, language in enumerate(SPELLINGS):
        beat: dict[str, Any] = {"entity": "/x.py", "type": "file", "time": t0 + 60 * i}
        waka.append({**beat, "project": "p"} | ({} if language is None else {"language": language}))
    auth = "Basic " + base64.b64encode(user.api_key.encode()).decode()
    sent = user.http.post(
        "/api/v1/users/current/heartbeats.bulk", json=waka, headers={"Authorization": auth}
    )
    assert sent.status_code == 201, sent.text
    ours = {"project": "p", "file": "/y.py", "lang": "python", "time": t0 + 540, "duration": 60}
    sent = user.http.post("/api/v1/heartbeat", json=ours, headers=user.key_header)
    assert sent.status_code in (200, 201), sent.text


def test_spellings_of_a_language_are_one_language_and_no_language_is_other(
    server: CodeTrackrProcess,
) -> None:
    user = Client(server.url, timezone="UTC")
    publish(user)
    record(user)
    expected = [("Python", PYTHON_S), ("Other", OTHER_S)]

    def stats() -> None:
        body = user.get("/api/v1/stats/languages", range="7d")
        assert [(e["language"], e["seconds"]) for e in body["languages"]] == expected

    eventually(stats)
    today = datetime.now(UTC).date().isoformat()
    summary = user.get("/api/v1/users/current/summaries", start=today, end=today)
    languages = summary["data"][0]["languages"]
    assert [(e["name"], e["total_seconds"]) for e in languages] == expected

    def board(path: str) -> list[tuple[str, float]]:
        response = httpx.get(f"{server.url}/api/v1/leaderboards/{path}", timeout=30)
        assert response.status_code == 200, response.text
        entries = response.json()["leaderboard"]
        return [(e["username"], e["seconds"]) for e in entries if e["username"] == user.username]

    def boards() -> None:
        for spelling in ("Python", "python", "PYTHON"):
            assert board(f"language/{spelling}") == [(user.username, PYTHON_S)], spelling
        assert board("language/other") == [(user.username, OTHER_S)]

    eventually(boards)
    leaders = user.get("/api/v1/leaders", language="pYtHoN")
    assert leaders["language"] == "Python"
    assert leaders["current_user"]["running_total"]["total_seconds"] == PYTHON_S

    badge = httpx.get(f"{server.url}/api/v1/user/badge/{user.username}/PYTHON", timeout=30)
    assert badge.status_code == 200, badge.text
    assert "<title>Python: 8m</title>" in badge.text

    exported = user.http.get("/api/v1/export/json", headers=user.bearer)
    assert exported.status_code == 200, exported.text
    assert [(r["language"], r["language_raw"]) for r in exported.json()] == [
        ("Python", "Python"),
        ("Python", "python"),
        ("Python", "PYTHON"),
        (None, None),
        (None, None),
        ("Python", "Python"),
        ("Python", "python"),
    ]
