"""``codetrackr claude-hook``: Claude Code's hooks report AI activity to CodeTrackr (docs/ai.md).

Claude Code runs the command for each hook event it is configured for, with the event's JSON on
stdin (``session_id``, ``transcript_path``, ``cwd``, ``hook_event_name`` and the event's own
fields). The command turns it into writes of the AI API (:func:`requests_for`, pure), puts them
in an outbox (a SQLite file beside the config), then sends what the outbox holds, oldest first,
with the user's API key, within a small time budget. What cannot be sent now (no network, the
server down, a 5xx or 429, or a key it refuses: 401 or 403 until the configuration is fixed)
stays queued and goes with the next event, like WakaTime's CLI does with heartbeats; a request
the server refuses for good (another 4xx: the write itself is invalid) is dropped and logged.

It never gets in the assistant's way: it prints nothing on stdout (Claude Code adds a hook's
stdout to the conversation for some events), it always exits 0, and it gives up sending after
``--timeout`` seconds. Every write carries its own time, and the server names records by their
content, so a write sent twice (a retry after a lost answer) is recorded once.

Mapping (all under ``/api/v1/ai``): ``SessionStart`` starts the session in ``cwd``;
``UserPromptSubmit`` records the prompt; ``PreToolUse`` notes when the tool started;
``PostToolUse`` records the tool call (its status from the tool's response, its execution time
from the matching ``PreToolUse``) and, for ``Write``, ``Edit``, ``MultiEdit`` and
``NotebookEdit``, the file activity with the lines added and removed; ``Stop`` records the
assistant's last answer, read from the end of the transcript; ``SessionEnd`` ends the session.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from schemas.ai_files import bounded_input, file_change

_log = logging.getLogger("codetrackr.claude_hook")

ASSISTANT = "Claude Code"
MAX_STDIN = 8 * 1024 * 1024
TRANSCRIPT_TAIL = 512 * 1024  # bytes of the transcript read to find the last answer
MAX_CONTENT = 100_000


@dataclass(frozen=True, slots=True)
class Request:
    """One write of the AI API: ``path`` under the API's base, and its JSON body."""

    path: str
    body: dict[str, Any]


# ---- the pure mapping -------------------------------------------------------------------------


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def tool_key(payload: Mapping[str, Any]) -> str:
    """What pairs a ``PostToolUse`` with its ``PreToolUse``: the tool use's id when Claude Code
    gives one, else the session, the tool and its input."""
    if payload.get("tool_use_id"):
        return f"{payload.get('session_id')}:{payload['tool_use_id']}"
    text = json.dumps(payload.get("tool_input"), sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{payload.get('session_id')}:{payload.get('tool_name')}:{digest}"


def tool_failed(response: Any) -> bool:
    """Pure: whether a tool's response says it failed."""
    if not isinstance(response, dict):
        return False
    if response.get("success") is False or response.get("is_error") is True:
        return True
    return bool(response.get("error")) or response.get("interrupted") is True


def requests_for(
    payload: Mapping[str, Any],
    now: float,
    *,
    started: float | None = None,
    last_answer: tuple[str, float] | None = None,
) -> list[Request]:
    """Pure: the writes a hook event stands for. ``started`` is when the matching
    ``PreToolUse`` ran (for a ``PostToolUse``); ``last_answer`` the assistant's last answer and
    its time (for a ``Stop``). An event without a session, or of a kind not tracked, is none."""
    event = payload.get("hook_event_name")
    session = payload.get("session_id")
    if not isinstance(session, str) or not session:
        return []
    cwd = payload.get("cwd") if isinstance(payload.get("cwd"), str) and payload.get("cwd") else None
    place = {"project_path": cwd} if cwd else {}
    if event == "SessionStart":
        return [
            Request(
                "/sessions/start",
                {
                    "session_id": session,
                    "project_path": cwd or "unknown",
                    "start_time": iso(now),
                    "assistant": ASSISTANT,
                },
            )
        ]
    if event == "SessionEnd":
        return [Request("/sessions/end", {"session_id": session, "end_time": iso(now)})]
    if event == "UserPromptSubmit":
        prompt = payload.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return []
        return [
            Request(
                "/conversations",
                {
                    "session_id": session,
                    "role": "user",
                    "content": prompt[:MAX_CONTENT],
                    "timestamp": iso(now),
                    **place,
                },
            )
        ]
    if event == "Stop" and last_answer is not None:
        text, at = last_answer
        return [
            Request(
                "/conversations",
                {
                    "session_id": session,
                    "role": "assistant",
                    "content": text[:MAX_CONTENT],
                    "timestamp": iso(at),
                    **place,
                },
            )
        ]
    if event == "PostToolUse":
        tool = payload.get("tool_name")
        if not isinstance(tool, str) or not tool:
            return []
        given = payload.get("tool_input")
        tool_input: dict[str, Any] = given if isinstance(given, dict) else {}
        response = payload.get("tool_response")
        at = started if started is not None else now
        call: dict[str, Any] = {
            "session_id": session,
            "tool_name": tool[:200],
            "parameters": bounded_input(tool_input),
            "result_status": "error" if tool_failed(response) else "success",
            "timestamp": iso(at),
            **place,
        }
        if started is not None:
            call["execution_time_ms"] = round(max(0.0, now - started) * 1000, 3)
        out = [Request("/tool-calls", call)]
        change = file_change(tool, tool_input, response) if not tool_failed(response) else None
        if change is not None:
            path, action, added, removed = change
            out.append(
                Request(
                    "/activities",
                    {
                        "session_id": session,
                        "file_path": path,
                        "action": action,
                        "lines_added": added,
                        "lines_removed": removed,
                        "timestamp": iso(now),
                        **place,
                    },
                )
            )
        return out
    return []


def last_answer(transcript: Path) -> tuple[str, float] | None:
    """The assistant's last text answer in a Claude Code transcript (JSONL), and its time; the
    file's tail only is read, malformed lines are skipped."""
    try:
        with transcript.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - TRANSCRIPT_TAIL))
            tail = handle.read()
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("type") != "assistant":
            continue
        message = entry.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        texts = (
            [c.get("text") for c in content if isinstance(c, dict) and c.get("type") == "text"]
            if isinstance(content, list)
            else [content]
        )
        text = "\n".join(t for t in texts if isinstance(t, str) and t.strip())
        if not text:
            continue
        try:
            at = datetime.fromisoformat(str(entry.get("timestamp")).replace("Z", "+00:00"))
        except ValueError:
            continue
        return text, at.timestamp()
    return None


# ---- the outbox -------------------------------------------------------------------------------


class Outbox:
    """Writes not sent yet, and the start times of tools in use, in one SQLite file (hooks of
    one machine may run at once: SQLite serializes them)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=2.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, path TEXT, body TEXT,"
            " queued_at REAL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS tool_starts (key TEXT PRIMARY KEY, at REAL)")

    def close(self) -> None:
        self._db.close()

    def put(self, requests: Sequence[Request], now: float) -> None:
        self._db.executemany(
            "INSERT INTO outbox (path, body, queued_at) VALUES (?, ?, ?)",
            [(r.path, json.dumps(r.body), now) for r in requests],
        )

    def pending(self) -> Iterator[tuple[int, Request]]:
        rows = self._db.execute("SELECT id, path, body FROM outbox ORDER BY id").fetchall()
        for row_id, path, body in rows:
            yield int(row_id), Request(str(path), json.loads(body))

    def done(self, row_id: int) -> None:
        self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))

    def size(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def tool_started(self, key: str, at: float) -> None:
        self._db.execute("INSERT OR REPLACE INTO tool_starts VALUES (?, ?)", (key, at))
        # Starts never ended (a crashed tool) are forgotten after a day.
        self._db.execute("DELETE FROM tool_starts WHERE at < ?", (at - 86_400,))

    def tool_ended(self, key: str) -> float | None:
        row = self._db.execute("SELECT at FROM tool_starts WHERE key = ?", (key,)).fetchone()
        self._db.execute("DELETE FROM tool_starts WHERE key = ?", (key,))
        return None if row is None else float(row[0])


def send(outbox: Outbox, base_url: str, api_key: str, deadline: float) -> int:
    """Send what the outbox holds, oldest first, until it is empty, the server cannot take
    more now, or ``deadline`` (monotonic) passes; returns how many were sent."""
    sent = 0
    with httpx.Client(base_url=base_url.rstrip("/"), headers={"X-API-Key": api_key}) as client:
        for row_id, request in outbox.pending():
            left = deadline - time.monotonic()
            if left <= 0.05:
                break
            try:
                answer = client.post(
                    "/api/v1/ai" + request.path, json=request.body, timeout=min(left, 5.0)
                )
            except httpx.HTTPError as exc:
                _log.info("offline (%s): %d writes stay queued", exc, outbox.size())
                break
            if answer.status_code in (408, 429) or answer.status_code >= 500:
                _log.info("server busy (%s): writes stay queued", answer.status_code)
                break
            if answer.status_code in (401, 403):
                # The key is wrong or read-only: fixing the configuration sends the queue.
                _log.warning(
                    "the server refused the API key (%s): writes stay queued", answer.status_code
                )
                break
            if answer.status_code >= 400:
                _log.warning(
                    "dropped %s: %s %s", request.path, answer.status_code, answer.text[:500]
                )
            else:
                sent += 1
            outbox.done(row_id)
    return sent


# ---- the command ------------------------------------------------------------------------------


def _config(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser()
    with contextlib.suppress(OSError, configparser.Error):
        parser.read(path)
    return dict(parser["settings"]) if parser.has_section("settings") else {}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    home = Path(os.environ.get("CODETRACKR_HOME", Path.home() / ".codetrackr"))
    parser.add_argument(
        "--config",
        type=Path,
        default=home / "config.cfg",
        help="INI file with [settings] api_url and api_key",
    )
    parser.add_argument("--api-url", default=None, help="the server (CODETRACKR_API_URL)")
    parser.add_argument("--api-key", default=None, help="your API key (CODETRACKR_API_KEY)")
    parser.add_argument(
        "--queue",
        type=Path,
        default=home / "claude-hook.sqlite3",
        help="the outbox of writes not sent yet",
    )
    parser.add_argument(
        "--timeout", type=float, default=3.0, help="seconds spent sending at most (default 3)"
    )


def run(args: argparse.Namespace, stdin: bytes, now: float | None = None) -> int:
    """Handle one hook event; always 0 (failures are logged to ``<queue>.log``)."""
    at = time.time() if now is None else now
    deadline = time.monotonic() + max(0.1, args.timeout)
    try:
        args.queue.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler | None = logging.FileHandler(args.queue.with_suffix(".log"))
    except OSError:
        handler = None
    if handler is not None:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        _log.addHandler(handler)
    _log.propagate = False
    _log.setLevel(logging.INFO)
    try:
        settings = _config(args.config)
        base = args.api_url or os.environ.get("CODETRACKR_API_URL") or settings.get("api_url")
        key = args.api_key or os.environ.get("CODETRACKR_API_KEY") or settings.get("api_key")
        try:
            payload = json.loads(stdin)
        except ValueError:
            _log.warning("skipped a hook event that is not JSON (%d bytes)", len(stdin))
            payload = None
        outbox = Outbox(args.queue)
        try:
            if isinstance(payload, dict):
                outbox.put(_requests(outbox, payload, at), at)
            if base and key:
                send(outbox, base, key, deadline)
            else:
                _log.warning("no api_url or api_key configured: writes stay queued")
        finally:
            outbox.close()
    except Exception:  # never fail the assistant: whatever happens is logged, exit 0
        _log.exception("claude-hook failed")
    finally:
        if handler is not None:
            _log.removeHandler(handler)
            handler.close()
    return 0


def _requests(outbox: Outbox, payload: Mapping[str, Any], now: float) -> list[Request]:
    event = payload.get("hook_event_name")
    if event == "PreToolUse":
        outbox.tool_started(tool_key(payload), now)
        return []
    started = outbox.tool_ended(tool_key(payload)) if event == "PostToolUse" else None
    answer = None
    if event == "Stop" and isinstance(payload.get("transcript_path"), str):
        answer = last_answer(Path(payload["transcript_path"]).expanduser())
    return requests_for(payload, now, started=started, last_answer=answer)


def main(args: argparse.Namespace) -> int:
    try:
        stdin = sys.stdin.buffer.read(MAX_STDIN)
    except OSError:
        stdin = b""
    return run(args, stdin)
