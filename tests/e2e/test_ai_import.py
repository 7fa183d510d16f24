"""``codetrackr import claude|codex`` against a real server: Claude Code's transcripts and Codex's
rollouts become sessions, messages, tool calls, file activities and token usage; importing again
adds nothing; malformed lines are skipped and named; offline, requests are queued and sent by the
next run. The usage endpoints' daily tokens and cost equal the real ccusage's on the same files
(``ccusage daily --json``, installed by ``make install`` from npm) and the ones computed here by
hand from ccusage's rules and the published prices."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.e2e.harness import (
    CODETRACKR,
    ROOT,
    Client,
    CodeTrackrProcess,
    eventually,
    free_port,
    run_cli,
    snapshot_tables,
)
from tests.support.transcripts import (
    ClaudeSession,
    codex_rollout,
    text_block,
    tool_block,
    usage,
)

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]

CCUSAGE = ROOT / ".venv" / "node" / "node_modules" / ".bin" / "ccusage"
SONNET, OPUS, HAIKU = (
    "claude-sonnet-4-20250514",
    "claude-opus-4-20250514",
    "claude-haiku-4-5-20251001",
)
# USD per million tokens (input, output, cache writes, cache reads): Anthropic's list prices.
PRICES = {
    SONNET: (3.0, 15.0, 3.75, 0.30),
    OPUS: (15.0, 75.0, 18.75, 1.50),
    HAIKU: (1.0, 5.0, 1.25, 0.10),
}
CWD = "/home/ada/tracker"
CODEX_SESSION = "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeTrackrProcess]:
    proc = CodeTrackrProcess("serve", tmp_path_factory.mktemp("aiimport") / "data").start()
    yield proc
    proc.stop()


def write_claude_home(home: Path) -> list[dict[str, Any]]:
    """A Claude Code home: two sessions (the second resumed from the first, so it repeats one
    request), a subagent, a malformed line, answers on both sides of midnight (UTC), and a
    ``.claude.json``. Returns the assistant lines' (id, request, model, usage, timestamp)."""
    first = ClaudeSession("sess-1", CWD)
    first.prompt(0, "fix the parser bug")
    first.answer(
        1,
        "msg_1",
        "req_1",
        SONNET,
        usage(10, 200, 3000, 500),
        [
            text_block("Let me edit it."),
            tool_block(
                "toolu_1", "Edit", file_path=f"{CWD}/p.py", old_string="a", new_string="b\nc"
            ),
            tool_block("toolu_2", "Read", file_path=f"{CWD}/missing.py"),
        ],
    )
    first.result(1.5, "toolu_1")
    first.result(1.6, "toolu_2", error=True)
    first.answer(2, "msg_2", "req_2", OPUS, usage(7, 40, 0, 3500), [text_block("Fixed.")])
    first.answer(
        5,
        "msg_3",
        "req_3",
        HAIKU,
        usage(300, 12, 100, 0),
        [text_block("Subagent: 3 parsers found.")],
        isSidechain=True,
    )
    second = ClaudeSession("sess-2", CWD)
    second.answer(2, "msg_2", "req_2", OPUS, usage(7, 40, 0, 3500), [text_block("Fixed.")])
    second.prompt(95, "and the lexer?")
    second.answer(
        100,  # 00:10 the next day (UTC)
        "msg_4",
        "req_4",
        SONNET,
        usage(4, 900, 0, 12000),
        [tool_block("toolu_4", "Write", file_path=f"{CWD}/lexer.py", content="x\ny\nz\n")],
    )
    second.result(100.2, "toolu_4", result={"type": "create"})
    projects = home / ".claude" / "projects" / "-home-ada-tracker"
    projects.mkdir(parents=True)
    (projects / "sess-1.jsonl").write_text(first.text() + "{this is not json\n")
    (projects / "sess-2.jsonl").write_text(second.text())
    (home / ".claude.json").write_text(
        json.dumps(
            {
                "projects": {
                    CWD: {"lastSessionId": "sess-2", "history": [{"display": "and the lexer?"}]}
                }
            }
        )
    )
    return [
        line
        for session in (first, second)
        for line in session.lines
        if line.get("type") == "assistant"
    ]


def by_hand(lines: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """ccusage's daily rule: each (message id, request id) once, in the file order, dated by
    its UTC timestamp's day; cost = each kind of token at its model's price."""
    seen: set[tuple[str, str]] = set()
    days: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for line in lines:
        key = (line["message"]["id"], line["requestId"])
        if key in seen:
            continue
        seen.add(key)
        u, model = line["message"]["usage"], line["message"]["model"]
        counts = (
            u["input_tokens"],
            u["output_tokens"],
            u["cache_creation_input_tokens"],
            u["cache_read_input_tokens"],
        )
        day = days[line["timestamp"][:10]]
        for name, count in zip(
            ("input", "output", "cache_creation", "cache_read"), counts, strict=False
        ):
            day[name] += count
        day["cost"] += sum(c * p for c, p in zip(counts, PRICES[model], strict=True)) / 1e6
    return days


def import_cli(home: Path, *args: str, url: str, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CODETRACKR), "import", *args, "--api-url", url, "--api-key", key, "--quiet"],
        cwd=ROOT,
        env={**os.environ, "HOME": str(home), "CODETRACKR_HOME": str(home / ".codetrackr")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def data(user: Client, path: str, **params: Any) -> Any:
    answer = user.http.get(path, headers=user.key_header, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def ours_daily(user: Client) -> dict[str, dict[str, float]]:
    daily = data(user, "/api/v1/ai/usage/daily")["daily"]
    return {
        d["date"]: {
            "input": d["input_tokens"],
            "output": d["output_tokens"],
            "cache_creation": d["cache_creation_tokens"],
            "cache_read": d["cache_read_tokens"],
            "cost": d["cost_usd"],
        }
        for d in daily
    }


def same_days(left: dict[str, dict[str, float]], right: dict[str, dict[str, float]]) -> None:
    assert sorted(left) == sorted(right)
    for day in left:
        for name in ("input", "output", "cache_creation", "cache_read"):
            assert left[day][name] == right[day][name], (day, name)
        assert left[day]["cost"] == pytest.approx(right[day]["cost"], rel=1e-9), day


def test_claude_transcripts_are_imported_once_and_priced_as_ccusage_prices_them(
    server: CodeTrackrProcess, tmp_path: Path
) -> None:
    user = Client(server.url, timezone="UTC")
    home = tmp_path / "home"
    lines = write_claude_home(home)

    # The defaults: ~/.claude/projects and ~/.claude.json.
    done = import_cli(home, "claude", url=server.url, key=user.api_key)
    assert done.returncode == 0, done.stderr
    assert "files: 3" in done.stdout
    assert "skipped lines: 1" in done.stdout
    assert "sess-1.jsonl:" in done.stdout
    assert "not JSON" in done.stdout
    assert "imported: 0 records" not in done.stdout

    expected = by_hand(lines)
    eventually(lambda: same_days(ours_daily(user), expected), timeout_s=60)
    assert sorted(expected) == ["2026-03-09", "2026-03-10"]

    # Importing again adds nothing: every record is a duplicate.
    again = import_cli(home, "claude", url=server.url, key=user.api_key)
    assert again.returncode == 0, again.stderr
    assert "imported: 0 records" in again.stdout
    assert "already imported: 0;" not in again.stdout
    same_days(ours_daily(user), expected)

    # What else the lines hold: sessions, tools with their outcome, file activities.
    sessions = {s["session_id"]: s for s in data(user, "/api/v1/ai/sessions")}
    assert set(sessions) == {"sess-1", "sess-2"}
    assert sessions["sess-1"]["project_path"] == CWD
    stats = {t["tool_name"]: t for t in data(user, "/api/v1/ai/tool-calls/stats")["tools"]}
    assert (stats["Edit"]["success_count"], stats["Read"]["success_count"]) == (1, 0)
    activities = data(user, "/api/v1/ai/activities")
    assert sorted((a["file_path"], a["action"], a["lines_added"]) for a in activities) == [
        (f"{CWD}/lexer.py", "created", 3),
        (f"{CWD}/p.py", "modified", 2),
    ]
    texts = [c["content"] for c in data(user, "/api/v1/ai/conversations")["conversations"]]
    assert "Subagent: 3 parsers found." not in texts
    assert "fix the parser bug" in texts

    # The other reports add up to the same totals.
    total = sum(day["cost"] for day in expected.values())
    for report in ("monthly", "sessions", "projects", "models", "blocks"):
        answer = data(user, f"/api/v1/ai/usage/{report}")
        assert answer["totals"]["cost_usd"] == pytest.approx(total, rel=1e-9), report
    models = {m["model"]: m for m in data(user, "/api/v1/ai/usage/models")["models"]}
    assert set(models) == set(PRICES)
    assert models[OPUS]["requests"] == 1  # read from both files, counted once
    [project] = data(user, "/api/v1/ai/usage/projects")["projects"]
    assert (project["project_path"], project["project_name"]) == (CWD, "tracker")
    blocks = data(user, "/api/v1/ai/usage/blocks")["blocks"]
    assert [b["start"] for b in blocks] == ["2026-03-09T22:00:00Z"]
    one_day = data(user, "/api/v1/ai/usage/daily", start_date="2026-03-10", end_date="2026-03-10")
    assert [d["date"] for d in one_day["daily"]] == ["2026-03-10"]

    # Another user sees none of it.
    other = Client(server.url)
    assert data(other, "/api/v1/ai/usage/daily")["daily"] == []

    # The real ccusage, on the same files, agrees.
    if not CCUSAGE.exists():
        pytest.skip("ccusage is not installed (make install installs it with npm)")
    if shutil.which("node") is None:
        pytest.skip("node is not installed (apt-get install nodejs npm)")
    ran = subprocess.run(
        [str(CCUSAGE), "daily", "--json", "--offline", "--timezone", "UTC"],
        env={**os.environ, "HOME": str(home), "CLAUDE_CONFIG_DIR": str(home / ".claude")},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    theirs = {
        d["date"]: {
            "input": d["inputTokens"],
            "output": d["outputTokens"],
            "cache_creation": d["cacheCreationTokens"],
            "cache_read": d["cacheReadTokens"],
            "cost": d["totalCost"],
        }
        for d in json.loads(ran.stdout)["daily"]
    }
    same_days(ours_daily(user), theirs)


def test_offline_imports_are_queued_and_sent_by_the_next_run(
    server: CodeTrackrProcess, tmp_path: Path
) -> None:
    user = Client(server.url, timezone="UTC")
    home = tmp_path / "home"
    codex = home / ".codex" / "sessions" / "2026" / "03" / "09"
    codex.mkdir(parents=True)
    (codex / f"rollout-2026-03-09T22-30-00-{CODEX_SESSION}.jsonl").write_text(
        codex_rollout(CODEX_SESSION, "/home/ada/api")
    )
    offline = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = import_cli(home, "codex", url=offline, key=user.api_key)
    assert done.returncode == 0, done.stderr
    assert "queued: 1 requests" in done.stdout
    assert data(user, "/api/v1/ai/usage/daily")["daily"] == []

    # Online: the queue goes first, then the files (already sent: duplicates).
    online = import_cli(home, "codex", url=server.url, key=user.api_key)
    assert online.returncode == 0, online.stderr

    def priced() -> None:
        [model] = data(user, "/api/v1/ai/usage/models")["models"]
        assert model["model"] == "gpt-5-codex"
        assert (model["input_tokens"], model["cache_read_tokens"], model["output_tokens"]) == (
            1300,
            1200,
            130,
        )
        # USD per million: input 1.25, cached input 0.125, output 10.
        assert model["cost_usd"] == pytest.approx((1300 * 1.25 + 1200 * 0.125 + 130 * 10) / 1e6)

    eventually(priced, timeout_s=60)
    [session] = data(user, "/api/v1/ai/sessions")
    assert (session["session_id"], session["assistant"], session["tool_calls_count"]) == (
        CODEX_SESSION,
        "Codex",
        2,
    )


def test_the_import_endpoint_refuses_bad_bodies_and_anonymous_callers(
    server: CodeTrackrProcess,
) -> None:
    user = Client(server.url)
    bad = user.http.post(
        "/api/v1/ai/import/transcript",
        headers=user.key_header,
        json={"source": "cursor", "text": ""},
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "validation_error"
    anonymous = user.http.post(
        "/api/v1/ai/import/transcript", json={"source": "claude", "text": ""}
    )
    assert anonymous.status_code == 401
    # A file of nothing but garbage imports nothing and says which lines it skipped.
    junk = user.http.post(
        "/api/v1/ai/import/transcript",
        headers=user.key_header,
        json={"source": "claude", "text": "oops\n[]\n", "first_line": 7},
    )
    assert junk.status_code == 200, junk.text
    assert junk.json()["data"] == {
        "imported": {},
        "records": 0,
        "duplicates": 0,
        "already_imported": 0,
        "skipped_lines": 2,
        "skipped": [
            {"line": 7, "reason": "not JSON"},
            {"line": 8, "reason": "not a JSON object"},
        ],
    }
    no_cli_config = subprocess.run(
        [str(CODETRACKR), "import", "claude", "--quiet"],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CODETRACKR_API")},
            "HOME": "/nonexistent",
            "CODETRACKR_HOME": "/nonexistent/.codetrackr",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert no_cli_config.returncode == 2
    assert "no server or API key" in no_cli_config.stderr


def test_the_owners_socket_hears_the_import_and_lines_and_lengths_are_read(
    server: CodeTrackrProcess, tmp_path: Path
) -> None:
    user = Client(server.url, timezone="UTC")
    home = tmp_path / "home"
    write_claude_home(home)
    ticket = user.http.post("/api/v1/ws-ticket", headers=user.bearer).json()["ticket"]
    url = server.url.replace("http://", "ws://") + f"/ws?ticket={ticket}"
    with connect(url, open_timeout=10, close_timeout=2) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        projects = str(home / ".claude" / "projects")
        done = import_cli(home, "claude", projects, url=server.url, key=user.api_key)
        assert done.returncode == 0, done.stderr
        activity: list[dict[str, Any]] = []
        while sum(m["counts"].get("session_start", 0) for m in activity) < 2:
            message = json.loads(ws.recv(timeout=30))
            if message["type"] == "ai.activity":
                activity.append(message)
    started = {s["session_id"] for m in activity for s in m["sessions_started"]}
    assert started == {"sess-1", "sess-2"}
    calls = {(c["tool_name"], c["result_status"]) for m in activity for c in m["tool_calls"]}
    assert calls == {("Edit", "success"), ("Read", "error"), ("Write", "success")}
    previews = {p["preview"] for m in activity for p in m["messages"]}
    assert "fix the parser bug" in previews
    # Each request once per import request (msg_1's three lines are one); msg_2, in both files,
    # is sent again with the second file unless the first is projected by then.
    assert sum(m["tokens"].get("output", 0) for m in activity) in (200 + 40 + 12 + 900, 1192)

    # Lines: the assistant's (its file activities) and by hand (an editor's heartbeat).
    hand = {
        "entity": f"{CWD}/notes.py",
        "type": "file",
        "time": 1773096000.0,  # 2026-03-09T22:40:00Z
        "project": "tracker",
        "human_line_changes": 7,
    }
    sent = user.http.post(
        "/api/v1/users/current/heartbeats.bulk", json=[hand], headers=user.key_header
    )
    assert sent.status_code == 201, sent.text

    def lines() -> dict[str, Any]:
        answer = data(user, "/api/v1/ai/lines", start_date="2026-03-01")
        assert answer["totals"]["human_lines"] == 7
        return answer  # type: ignore[no-any-return]

    answer = eventually(lines, timeout_s=60)
    assert answer["days"] == [
        {
            "date": "2026-03-09",
            "ai_lines": 3,
            "human_lines": 7,
            "projects": [{"project": "tracker", "ai_lines": 3, "human_lines": 7}],
        },
        {
            "date": "2026-03-10",
            "ai_lines": 3,
            "human_lines": 0,
            "projects": [{"project": "tracker", "ai_lines": 3, "human_lines": 0}],
        },
    ]
    assert answer["totals"] == {"ai_lines": 6, "human_lines": 7, "ai_share": round(6 / 13, 4)}
    bad = user.http.get(
        "/api/v1/ai/lines", params={"start_date": "yesterday"}, headers=user.key_header
    )
    assert bad.status_code == 400

    lengths = data(user, "/api/v1/ai/sessions/lengths")
    assert (lengths["ended_sessions"], lengths["open_sessions"]) == (2, 0)
    buckets = {b["range"]: b["sessions"] for b in lengths["buckets"]}
    assert (buckets["5m-15m"], buckets["1h-2h"]) == (1, 1)  # 5 minutes; 98.2 minutes
    assert lengths["p50_minutes"] == pytest.approx((5 + 98.2) / 2)


def test_a_deployment_prices_with_its_own_table(tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"models": {"claude-sonnet-4": {"input": 1000, "output": 2000}}}))
    own = CodeTrackrProcess(
        "serve", tmp_path / "data", env={"CODETRACKR_AI_PRICING_FILE": str(prices)}
    ).start()
    try:
        user = Client(own.url, timezone="UTC")
        home = tmp_path / "home"
        write_claude_home(home)
        sent = import_cli(home, "claude", str(home / ".claude"), url=own.url, key=user.api_key)
        assert sent.returncode == 0, sent.stderr

        def priced() -> None:
            answer = data(user, "/api/v1/ai/usage/models")
            models = {m["model"]: m["cost_usd"] for m in answer["models"]}
            # msg_1 and msg_4: 14 input and 1,100 output tokens; cache tokens are free here.
            assert models[SONNET] == pytest.approx((14 * 1000 + 1100 * 2000) / 1e6)
            assert answer["unpriced_models"] == [HAIKU, OPUS]

        eventually(priced, timeout_s=60)
    finally:
        own.stop()
    # A table that cannot be read stops the server at its start, saying why.
    prices.write_text('{"models": 3}')
    refused = subprocess.run(
        [str(CODETRACKR), "serve", "--data-dir", str(tmp_path / "bad"), "--port", "0"],
        cwd=ROOT,
        env={**os.environ, "CODETRACKR_AI_PRICING_FILE": str(prices)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode != 0
    assert "pricing document" in refused.stderr


def test_usage_is_erased_by_range_exported_and_rebuilt_by_replay(
    server: CodeTrackrProcess, tmp_path: Path
) -> None:
    """Last in the module: the replay stops the module's server."""
    user = Client(server.url, timezone="UTC")
    home = tmp_path / "home"
    write_claude_home(home)
    done = import_cli(home, "claude", url=server.url, key=user.api_key)
    assert done.returncode == 0, done.stderr
    eventually(lambda: _days(user, ["2026-03-09", "2026-03-10"]), timeout_s=60)

    exported = user.http.get("/api/v1/export/ai/json", headers=user.key_header).json()
    assert sorted(row["message_id"] for row in exported["ai_usage"]) == [
        "msg_1",
        "msg_2",
        "msg_3",
        "msg_4",
    ]
    csv_answer = user.http.get("/api/v1/export/ai/usage.csv", headers=user.key_header)
    assert csv_answer.status_code == 200
    assert csv_answer.text.splitlines()[0].startswith("usage_id,session_id,model,message_id")

    # Erasing the second day removes its requests, in the tables and in the log.
    erased = user.http.post(
        "/api/v1/user/data/delete",
        json={"start": "2026-03-10T00:00:00Z", "end": "2026-03-11T00:00:00Z"},
        headers=user.bearer,
    )
    assert erased.status_code == 202, erased.text
    eventually(lambda: _days(user, ["2026-03-09"]), timeout_s=60)

    server.stop()
    url = f"chdb://{(server.data_dir / 'clickhouse').resolve()}"
    live = snapshot_tables(url)
    assert live["ai_usage"]
    output = run_cli(["replay", "--data-dir", str(server.data_dir), "--quiet"])
    assert "replayed" in output
    assert snapshot_tables(url) == live


def _days(user: Client, days: list[str]) -> None:
    assert [d["date"] for d in data(user, "/api/v1/ai/usage/daily")["daily"]] == days
