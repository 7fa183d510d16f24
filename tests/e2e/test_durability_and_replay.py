"""Nothing acknowledged is lost on ``kill -9``, and a replay rebuilds exactly the live tables."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.harness import Client, CodeTrackrProcess, eventually, run_cli, snapshot_tables

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse, pytest.mark.slow]

# Heartbeats 1000 s apart with 30 s of explicit coverage each: every heartbeat contributes exactly
# 30 s (the gap to the next one exceeds the 15-minute timeout), so the total counts them.
SPACING_S = 1000
COVER_S = 30


def aligned_start(days_ago: int, tz: str) -> float:
    """Local midnight ``days_ago`` days back, plus 100 s.

    Offsets of 100 + 1000*i seconds from midnight are all 100 mod 200, the largest below a day
    being 86300, so no 30 s coverage (nor one shifted by 5 s) ever crosses a local midnight and
    the expected totals are exact.
    """
    now = datetime.now(ZoneInfo(tz))
    midnight = (now - timedelta(days=days_ago)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp() + 100


def spaced_heartbeats(
    start: float, count: int, project: str = "durable"
) -> list[dict[str, object]]:
    return [
        {
            "project": project,
            "file": f"f{i % 7}.py",
            "time": start + i * SPACING_S,
            "duration": COVER_S,
        }
        for i in range(count)
    ]


def test_kill_9_after_acknowledgements_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = CodeTrackrProcess("serve", data).start()
    user = Client(server.url)
    start = aligned_start(3, "UTC")
    acknowledged = 0
    batches = [spaced_heartbeats(start + b * 20 * SPACING_S, 20) for b in range(10)]
    for batch in batches:
        response = user.http.post("/api/v1/heartbeats", json=batch, headers=user.key_header)
        assert response.status_code == 200
        acknowledged += len(batch)
    # No grace: the process dies right after the last 2xx, projections possibly behind.
    server.kill9()

    server = CodeTrackrProcess("serve", data, port=server.port).start()
    try:
        expected = acknowledged * COVER_S
        eventually(lambda: _assert_equal(user.summary_total(range="all"), expected), timeout_s=60)
        # The account and its key survived too (the same key still authenticates).
        assert user.http.get("/api/v1/user/me", headers=user.key_header).status_code == 200
        before = user.get("/api/v1/stats/daily", range="all")
    finally:
        server.stop()
    server = CodeTrackrProcess("serve", data, port=server.port).start()
    try:
        assert user.get("/api/v1/stats/daily", range="all") == before
    finally:
        server.stop()


def test_replay_rebuilds_exactly_the_live_tables(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = CodeTrackrProcess("serve", data).start()
    try:
        user = Client(server.url, timezone="America/Mexico_City")
        start = aligned_start(5, "America/Mexico_City")
        beats = spaced_heartbeats(start, 40, project="one") + spaced_heartbeats(
            start + 5, 40, "two"
        )
        # Out of order, with duplicates, in several requests: what offline editors do.
        for chunk in (beats[40:], beats[:25], beats[10:40], beats[:5]):
            response = user.http.post("/api/v1/heartbeats", json=chunk, headers=user.key_header)
            assert response.status_code == 200
        # Each pair: "one" covers 30 s; "two" starts 5 s later, overlapping, and adds only the
        # 5 s past the end of "one" (overlap is never counted twice): 40 * 35 s.
        eventually(lambda: _assert_equal(user.summary_total(range="all"), 40 * 35), timeout_s=60)
    finally:
        server.stop()
    url = f"chdb://{(data / 'clickhouse').resolve()}"
    live = snapshot_tables(url)
    assert live["heartbeats"], "the live run projected nothing"
    assert live["daily_stats"]
    output = run_cli(["replay", "--data-dir", str(data), "--quiet"])
    assert "replayed" in output
    rebuilt = snapshot_tables(url)
    assert rebuilt == live


def _assert_equal(a: object, b: object) -> None:
    assert a == b
