"""A Wakapi SQLite database as Wakapi (2.x) lays it out: the ``users`` and ``heartbeats`` tables
with the columns its GORM models give them (only those an import reads, plus a few it ignores)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE users (id TEXT PRIMARY KEY, api_key TEXT, location TEXT, email TEXT);
CREATE TABLE heartbeats (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, entity TEXT NOT NULL,
    type TEXT, category TEXT, project TEXT, branch TEXT, language TEXT, is_write NUMERIC,
    editor TEXT, ai_model TEXT, operating_system TEXT, machine TEXT, user_agent TEXT,
    time {time_type} NOT NULL, hash TEXT UNIQUE, origin TEXT, origin_id TEXT,
    created_at {time_type} NOT NULL, lines INTEGER, line_no INTEGER, cursor_pos INTEGER,
    line_deletions INTEGER, line_additions INTEGER, project_root_count INTEGER,
    ai_line_changes INTEGER, ai_session TEXT
);
"""


def wakapi_database(
    path: Path, users: dict[str, str], beats: list[dict[str, Any]], *, text_time: bool = False
) -> None:
    """``users``: id -> location; ``beats``: rows (``time`` in epoch seconds) with ``user_id``.
    Times are stored as epoch milliseconds, as Wakapi does on SQLite now, or with ``text_time``
    as the timestamp text older versions wrote."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA.format(time_type="TEXT" if text_time else "INTEGER"))
    db.executemany("INSERT INTO users (id, api_key, location) VALUES (?, 'k', ?)", users.items())
    for n, beat in enumerate(beats):
        at = beat["time"]
        stored = (
            datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "+00:00"
            if text_time
            else int(at * 1000)
        )
        row = {**beat, "time": stored, "created_at": stored, "hash": f"h{n}"}
        columns = ", ".join(row)
        db.execute(
            f"INSERT INTO heartbeats ({columns}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )
    db.commit()
    db.close()
