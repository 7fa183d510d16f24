"""``codetrackr backup`` while ``serve`` ingests, ``codetrackr restore`` elsewhere, replay: the
restored deployment holds everything acknowledged before the backup began, whole requests only,
and its totals equal the original's for the same heartbeats."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import Client, CodeTrackrProcess, eventually, run_cli
from tests.e2e.test_durability_and_replay import COVER_S, aligned_start, spaced_heartbeats

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse, pytest.mark.slow]

BATCH = 5


class Ingesting(threading.Thread):
    """Sends one user's heartbeats, one request after the other, until stopped; remembers how
    many were acknowledged and when."""

    def __init__(self, user: Client, start: float) -> None:
        super().__init__(daemon=True)
        self.user, self.start_at = user, start
        self.stop = threading.Event()
        self.acknowledged = 0
        self.sent = 0
        self.errors: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.user.base_url, timeout=30.0) as http:
            n = 0
            while not self.stop.is_set():
                beats = spaced_heartbeats(self.start_at + n * 1000, BATCH, project="load")
                self.sent += BATCH
                response = http.post("/api/v1/heartbeats", json=beats, headers=self.user.key_header)
                if response.status_code != 200:
                    self.errors.append(f"{response.status_code} {response.text}")
                    return
                self.acknowledged += BATCH
                n += BATCH


def _total(base_url: str, user: Client) -> int:
    response = httpx.get(
        f"{base_url}/api/v1/stats/summary", params={"range": "all"}, headers=user.bearer
    )
    assert response.status_code == 200, response.text
    return int(response.json()["total_seconds"])


def test_a_backup_taken_while_ingesting_restores_and_replays_to_the_same_totals(
    tmp_path: Path,
) -> None:
    original = CodeTrackrProcess("serve", tmp_path / "a").start()
    try:
        quiet = Client(original.url)
        for b in range(4):
            start = aligned_start(20, "UTC") + b * BATCH * 1000
            response = quiet.http.post(
                "/api/v1/heartbeats", json=spaced_heartbeats(start, BATCH), headers=quiet.key_header
            )
            assert response.status_code == 200
        busy = Client(original.url)
        load = Ingesting(busy, aligned_start(10, "UTC"))
        load.start()
        eventually(lambda: _more_than(load.acknowledged, 3 * BATCH), timeout_s=60)
        before = load.acknowledged
        output = run_cli(["backup", "--data-dir", str(tmp_path / "a"), str(tmp_path / "bk")])
        load.stop.set()
        load.join(timeout=60)
        assert not load.errors, load.errors  # the server kept answering 2xx during the backup
        assert "backed up" in output
        expected_quiet = 4 * BATCH * COVER_S
        eventually(lambda: _equal(_total(original.url, quiet), expected_quiet), timeout_s=60)
    finally:
        original.stop()

    manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    assert set(manifest["files"]) == {"eventlog.sqlite", "plugin-kv.sqlite3", "jwt_secret"}
    assert all((tmp_path / "bk" / name).stat().st_mode & 0o077 == 0 for name in manifest["files"])

    run_cli(["restore", "--data-dir", str(tmp_path / "b"), str(tmp_path / "bk"), "--quiet"])
    restored = CodeTrackrProcess("serve", tmp_path / "b").start()
    try:
        # The same tokens work: the accounts are on the log, the signing secret in the backup.
        assert _total(restored.url, quiet) == expected_quiet
        kept = _total(restored.url, busy) // COVER_S
        # Everything acknowledged before the backup began, nothing never sent, whole requests.
        assert before <= kept <= load.sent
        assert kept % BATCH == 0
        assert _total(restored.url, busy) == kept * COVER_S
        heartbeat_records = manifest["records"]["codetrackr.heartbeats"]
        assert heartbeat_records == 4 + kept // BATCH
    finally:
        restored.stop()

    # A data directory that already holds a log is never overwritten.
    with pytest.raises(RuntimeError, match=r"already holds eventlog\.sqlite"):
        run_cli(["restore", "--data-dir", str(tmp_path / "b"), str(tmp_path / "bk")])


def _more_than(value: int, floor: int) -> None:
    assert value > floor


def _equal(a: object, b: object) -> None:
    assert a == b
