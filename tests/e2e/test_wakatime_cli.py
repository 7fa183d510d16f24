"""The unmodified legacy WakaTime client (PyPI ``wakatime==13.1.0``) against ``codetrackr serve``.

The client runs as an editor plugin runs it (``tests/support/wakatime_cli.py`` installs it into a
project-owned virtualenv on Python 3.9 on first use). Its heartbeats must come out of WakaTime's
read endpoints (``summaries``, ``statusbar/today``) and CodeTrackr's own stats with the time the
reference rule gives (15-minute timeout: gaps under 15 minutes count, the last heartbeat adds 0),
computed by hand below. With the server down the client queues offline; after a restart
``--sync-offline-activity`` delivers the queue and the totals include it. The same holds for
the client configured as Wakapi's README tells its users (``api_url = http://host/api``).

Today's heartbeats must stay inside one local day whenever the suite runs, so each account gets a
fixed-offset zone (``Etc/GMT±N``) in which it is about noon: heartbeats from two hours ago up to
now all fall on that zone's today, far from either midnight.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.harness import Client, CodeTrackrProcess, eventually
from tests.support.wakatime_cli import (
    API_ERROR,
    SUCCESS,
    WAKATIME_VERSION,
    CliRun,
    WakaTimeCli,
    WakaTimeHome,
    bulk_url,
    find_python39,
    install,
    python39_candidates,
    wakapi_url,
)

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse, pytest.mark.slow]

PROJECT = "legacy-cli"
LANGUAGE = "Python"
PROJECTION_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def cli() -> WakaTimeCli:
    python = find_python39()
    if python is None:
        pytest.skip(
            f"no Python 3.9 on this machine (tried {', '.join(python39_candidates())}; "
            f"set CODETRACKR_PYTHON39): the legacy wakatime=={WAKATIME_VERSION} client "
            "needs it (its vendored urllib3 does not import on 3.10+)"
        )
    return install(python)


@contextmanager
def running(proc: CodeTrackrProcess) -> Iterator[CodeTrackrProcess]:
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def zone_at_midday(now: datetime) -> str:
    """A fixed-offset IANA zone in which ``now`` is between 12:00 and 13:00."""
    offset = 12 - now.astimezone(UTC).hour  # -11 ... +12 hours
    if offset == 0:
        return "Etc/UTC"
    # POSIX sign convention: Etc/GMT-3 is three hours AHEAD of UTC.
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


@dataclass(frozen=True, slots=True)
class Editor:
    """One user with the legacy client set up: account, HOME, a file, a zone where it is noon."""

    user: Client
    home: WakaTimeHome
    entity: Path
    timezone: str
    t0: float  # two hours ago, on a whole minute
    day: str  # the local date of every heartbeat of the test

    @classmethod
    def create(cls, server_url: str, tmp_path: Path, *, api_url: str | None = None) -> Editor:
        now = datetime.now(UTC)
        timezone = zone_at_midday(now)
        user = Client(server_url, timezone=timezone)
        home = WakaTimeHome(
            tmp_path / "home", api_key=user.api_key, api_url=api_url or bulk_url(server_url)
        )
        # Outside any repository, so the project is the one passed and no branch is guessed.
        entity = tmp_path / "work" / "main.py"
        entity.parent.mkdir(parents=True)
        entity.write_text("def main() -> None:\n    print('hello')\n")
        t0 = float(int(now.timestamp()) // 60 * 60 - 2 * 3600)
        day = datetime.fromtimestamp(t0, ZoneInfo(timezone)).date().isoformat()
        return cls(user, home, entity, timezone, t0, day)

    def send(self, cli: WakaTimeCli, offset_s: float, *, write: bool = False) -> CliRun:
        return cli.heartbeat(
            self.home,
            entity=self.entity,
            at=self.t0 + offset_s,
            project=PROJECT,
            language=LANGUAGE,
            write=write,
            # The legacy client sends these as strings; the server must coerce them.
            extra=["--lineno", str(int(offset_s) % 97 + 1), "--cursorpos", "12"],
            timezone=self.timezone,
        )

    def wakatime_get(self, path: str, **params: str) -> dict[str, Any]:
        """A read with the API key in WakaTime's own form (``Basic base64(key)``)."""
        token = base64.b64encode(self.user.api_key.encode()).decode()
        response = self.user.http.get(
            path, params=params, headers={"Authorization": f"Basic {token}"}
        )
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        result: dict[str, Any] = response.json()
        return result

    def assert_codetrackr_totals(self, expected: int) -> None:
        summary = self.user.get("/api/v1/stats/summary", start=self.day, end=self.day)
        assert summary["total_seconds"] == expected, summary
        assert summary["timezone"] == self.timezone
        assert summary["top_project"] == PROJECT
        assert summary["top_language"] == LANGUAGE
        daily = self.user.get("/api/v1/stats/daily", start=self.day, end=self.day)["daily"]
        assert daily == [{"date": self.day, "seconds": expected}]

    def assert_wakatime_totals(self, expected: int, text: str) -> None:
        body = self.wakatime_get("/api/v1/users/current/summaries", start=self.day, end=self.day)
        assert len(body["data"]) == 1, body
        summary = body["data"][0]
        assert summary["range"]["date"] == self.day, summary["range"]
        assert summary["range"]["timezone"] == self.timezone, summary["range"]
        grand_total = summary["grand_total"]
        assert (grand_total["total_seconds"], grand_total["text"]) == (expected, text), grand_total
        assert _by_name(summary["projects"]) == {PROJECT: expected}
        assert _by_name(summary["languages"]) == {LANGUAGE: expected}
        # The client sends no category (the server's default is coding), names the editor in its
        # User-Agent (from --plugin) and the machine in X-Machine-Name (its hostname).
        assert _by_name(summary["categories"]) == {"coding": expected}
        assert _by_name(summary["editors"]) == {"vim": expected}
        assert _by_name(summary["machines"]) == {socket.gethostname(): expected}
        assert body["cumulative_total"]["seconds"] == expected, body["cumulative_total"]

        today = self.wakatime_get("/api/v1/users/current/statusbar/today")["data"]
        assert today["range"]["date"] == self.day, today["range"]
        grand_total = today["grand_total"]
        assert (grand_total["total_seconds"], grand_total["text"]) == (expected, text), grand_total
        assert _by_name(today["projects"]) == {PROJECT: expected}
        assert _by_name(today["languages"]) == {LANGUAGE: expected}

    def assert_totals(self, expected: int, text: str) -> None:
        """Both APIs agree on ``expected`` seconds (``text`` in WakaTime's words), once the
        projection has caught up."""

        def check() -> None:
            self.assert_codetrackr_totals(expected)
            self.assert_wakatime_totals(expected, text)

        eventually(check, timeout_s=PROJECTION_TIMEOUT_S, interval_s=0.25)


def _by_name(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {item["name"]: item["total_seconds"] for item in items}


def _assert_sent(run: CliRun, home: WakaTimeHome) -> None:
    assert run.returncode == SUCCESS, str(run)
    # A heartbeat answered 400 is dropped with exit 0, so an empty queue alone proves nothing;
    # the totals below do. A whole-request error would have queued it.
    assert home.queued() == [], str(run)


def test_legacy_cli_heartbeats_show_up_in_summaries_and_statusbar(
    cli: WakaTimeCli, tmp_path: Path
) -> None:
    with running(CodeTrackrProcess("serve", tmp_path / "data")) as server:
        editor = Editor.create(server.url, tmp_path)
        # 0 -> 120 -> 300 -> 600: gaps of 2, 3 and 5 minutes, 600 s. Then 20 minutes of nothing
        # (over the 15-minute timeout: 0 s), and 1800 -> 2040 adds 240 s. The last adds 0.
        for offset, write in [(0, False), (120, True), (300, False), (600, True)]:
            _assert_sent(editor.send(cli, offset, write=write), editor.home)
        for offset in (1800, 2040):
            _assert_sent(editor.send(cli, offset), editor.home)
        editor.assert_totals(600 + 240, "14 mins")


def test_legacy_cli_queues_offline_and_syncs_after_restart(
    cli: WakaTimeCli, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = CodeTrackrProcess("serve", data_dir)
    with running(first):
        editor = Editor.create(first.url, tmp_path)
        # Online: 0 -> 120 -> 300 gives 300 s.
        for offset in (0, 120, 300):
            _assert_sent(editor.send(cli, offset), editor.home)
        editor.assert_totals(300, "5 mins")

    # Server down: the client queues each heartbeat and exits with its API error code.
    offline = [(600, True), (900, False), (2000, False), (2300, True)]
    for count, (offset, write) in enumerate(offline, start=1):
        run = editor.send(cli, offset, write=write)
        assert run.returncode == API_ERROR, str(run)
        queued = editor.home.queued()
        assert [hb["time"] for hb in queued] == [editor.t0 + o for o, _ in offline[:count]]
    assert {(hb["entity"], hb["project"], hb["language"]) for hb in queued} == {
        (str(editor.entity.resolve()), PROJECT, LANGUAGE)
    }
    assert [hb["is_write"] for hb in queued] == [write for _, write in offline]

    # Back on the same data directory and port: nothing new has arrived until the client syncs.
    with running(CodeTrackrProcess("serve", data_dir, port=first.port)):
        editor.assert_totals(300, "5 mins")
        assert len(editor.home.queued()) == len(offline)
        run = cli.sync_offline(editor.home, 100, timezone=editor.timezone)
        assert run.returncode == SUCCESS, str(run)
        assert editor.home.queued() == [], str(run)
        # 300 online, then 300 -> 600 -> 900 adds 600 s; 900 -> 2000 is 1100 s, over the
        # timeout (0 s); 2000 -> 2300 adds 300 s. 300 + 600 + 300 = 1200.
        editor.assert_totals(1200, "20 mins")


def test_legacy_cli_configured_for_wakapi_sends_queues_and_resends(
    cli: WakaTimeCli, tmp_path: Path
) -> None:
    """``api_url = http://host/api``, exactly as Wakapi's README has it: the client posts its
    batches to that URL, and they are recorded, queued while the server is down, and resent."""
    data_dir = tmp_path / "data"
    first = CodeTrackrProcess("serve", data_dir)
    with running(first):
        editor = Editor.create(first.url, tmp_path, api_url=wakapi_url(first.url))
        # Online: 0 -> 120 gives 120 s.
        for offset in (0, 120):
            _assert_sent(editor.send(cli, offset), editor.home)
        editor.assert_totals(120, "2 mins")

    offline = [(300, True), (420, False)]
    for offset, write in offline:
        assert editor.send(cli, offset, write=write).returncode == API_ERROR
    assert [hb["time"] for hb in editor.home.queued()] == [editor.t0 + o for o, _ in offline]

    with running(CodeTrackrProcess("serve", data_dir, port=first.port)):
        run = cli.sync_offline(editor.home, 100, timezone=editor.timezone)
        assert run.returncode == SUCCESS, str(run)
        assert editor.home.queued() == [], str(run)
        # 120 -> 300 -> 420 adds 300 s: 420 in all.
        editor.assert_totals(420, "7 mins")
