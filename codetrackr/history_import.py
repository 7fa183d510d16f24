"""``codetrackr import wakatime FILE...`` and ``codetrackr import wakapi DATABASE --wakapi-user
NAME``: years of history from WakaTime or Wakapi, uploaded to a running server
(``POST /api/v1/import/wakatime``, docs/wakapi.md#importing-your-history).

``wakatime`` streams WakaTime's data-dump export as it is read. ``wakapi`` reads a Wakapi SQLite
database read-only (``heartbeats`` of one user, oldest first, with the user's timezone) and
streams it to the server in the same export shape, as it reads the rows. Either way memory does
not grow with the history, a progress bar shows the bytes sent (``wakapi``: rows read), the
server checks the whole upload before it records anything, and this command prints its answer.
Importing again is harmless: nothing is recorded twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx
from tqdm import tqdm

PATH = "/api/v1/import/wakatime"
_CHUNK = 1 << 20


def _chunks(path: Path, bar: tqdm[Any]) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            bar.update(len(chunk))
            yield chunk


def _describe(name: str, answer: dict[str, Any]) -> str:
    lines = [
        f"{name}: {answer['heartbeats']:,} heartbeats over {answer['days']:,} days"
        f" (timezone {answer['timezone']})",
        f"  imported {answer['imported']:,}, duplicates in the file {answer['duplicates']:,},"
        f" rejected {answer['rejected']:,}",
    ]
    for error in answer.get("errors", []):
        fields = "; ".join(f"{k}: {v}" for k, v in error["fields"].items())
        lines.append(f"  {error['date']} #{error['index']}: {fields}")
    return "\n".join(lines) + "\n"


def _client(base: str, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=base.rstrip("/"),
        headers={"X-API-Key": key, "Content-Type": "application/json"},
        # The server answers once the whole upload is recorded: minutes for a large one.
        timeout=httpx.Timeout(60.0, read=None),
    )


def _send(client: httpx.Client, name: str, body: Iterable[bytes], out: TextIO, err: TextIO) -> bool:
    try:
        answer = client.post(PATH, content=body)
    except httpx.HTTPError as exc:
        err.write(f"{name}: the server could not be reached: {exc}\n")
        return False
    if answer.status_code != 200:
        try:
            message = answer.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = answer.text[:300]
        err.write(f"{name}: refused ({answer.status_code}): {message}\n")
        return False
    out.write(_describe(name, answer.json()))
    return True


def upload(
    files: Sequence[Path], base: str, key: str, *, quiet: bool, out: TextIO, err: TextIO
) -> int:
    """Upload each WakaTime export; 0 when all were imported, 1 when one was refused or
    unreadable."""
    failed = 0
    with _client(base, key) as client:
        for path in files:
            try:
                size = path.stat().st_size
            except OSError as exc:
                err.write(f"{path}: {exc.strerror or exc}\n")
                failed += 1
                continue
            with tqdm(
                total=size, unit="B", unit_scale=True, desc=path.name, disable=quiet, file=err
            ) as bar:
                ok = _send(client, path.name, _chunks(path, bar), out, err)
            failed += 0 if ok else 1
    return 1 if failed else 0


# ---- Wakapi ---------------------------------------------------------------------------------

# Wakapi's heartbeat columns (its GORM model, snake_case) -> WakaTime heartbeat fields.
_WAKAPI_FIELDS = {
    "entity": "entity",
    "type": "type",
    "category": "category",
    "project": "project",
    "branch": "branch",
    "language": "language",
    "is_write": "is_write",
    "editor": "editor",
    "operating_system": "os",
    "machine": "machine",
    "user_agent": "user_agent",
    "lines": "lines",
    "line_no": "lineno",
    "cursor_pos": "cursorpos",
    "line_additions": "line_additions",
    "line_deletions": "line_deletions",
    "project_root_count": "project_root_count",
    "ai_line_changes": "ai_line_changes",
}


class WakapiError(ValueError):
    """The database is not a Wakapi database this command can read, or the user is not in it."""


def _epoch(value: Any) -> float:
    """Wakapi's ``time``: epoch milliseconds (SQLite since Wakapi 2.12) or a timestamp text."""
    if isinstance(value, int | float):
        return float(value) / 1000
    moment = datetime.fromisoformat(str(value).replace(" ", "T", 1))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _open(database: Path) -> sqlite3.Connection:
    """Wakapi's database, read-only (never written, whatever this command does)."""
    try:
        return sqlite3.connect(f"file:{database.resolve()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise WakapiError(f"cannot open {database}: {exc}") from None


def wakapi_export(database: Path, username: str, progress: Any = None) -> Iterator[bytes]:
    """One Wakapi user's heartbeats as a WakaTime export, generated as the rows are read."""
    db = _open(database)
    try:
        try:
            columns = {row[1] for row in db.execute("PRAGMA table_info(heartbeats)")}
            user = db.execute("SELECT location FROM users WHERE id = ?", (username,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise WakapiError(f"{database} is not a Wakapi SQLite database: {exc}") from None
        if not {"user_id", "entity", "time"} <= columns:
            raise WakapiError(f"{database} has no Wakapi heartbeats table")
        if user is None:
            raise WakapiError(f"no Wakapi user {username!r} in {database}")
        present = [c for c in _WAKAPI_FIELDS if c in columns]
        rows = db.execute(
            f"SELECT time, {', '.join(present)} FROM heartbeats WHERE user_id = ? ORDER BY time",
            (username,),
        )
        zone = user[0] or "UTC"
        yield b'{"user": {"username": ' + json.dumps(username).encode()
        yield b', "timezone": ' + json.dumps(zone).encode() + b'}, "days": ['
        day, first_day = None, True
        for row in rows:
            at = _epoch(row[0])
            beat: dict[str, Any] = {"time": at}
            for column, value in zip(present, row[1:], strict=True):
                if value not in (None, ""):
                    beat[_WAKAPI_FIELDS[column]] = bool(value) if column == "is_write" else value
            date = datetime.fromtimestamp(at, UTC).date().isoformat()
            if date != day:
                opening = b"" if first_day else b"]},"
                yield opening + b'{"date": "' + date.encode() + b'", "heartbeats": ['
                day, first_day, separator = date, False, b""
            yield separator + json.dumps(beat).encode()
            separator = b","
            if progress is not None:
                progress.update(1)
        yield b"]}]}" if not first_day else b"]}"
    finally:
        db.close()


def upload_wakapi(
    database: Path, username: str, base: str, key: str, *, quiet: bool, out: TextIO, err: TextIO
) -> int:
    """Upload one Wakapi user's heartbeats; 0 when imported, 1 when refused or unreadable."""
    try:
        rows = _count_rows(database, username)
    except WakapiError as exc:
        err.write(f"{exc}\n")
        return 1
    with (
        _client(base, key) as client,
        tqdm(total=rows, unit="hb", desc=f"wakapi {username}", disable=quiet, file=err) as bar,
    ):
        try:
            body = wakapi_export(database, username, bar)
            next_chunk = next(body)  # opens the database: its errors before any request
        except WakapiError as exc:
            err.write(f"{exc}\n")
            return 1
        ok = _send(client, f"{database.name} ({username})", _prepend(next_chunk, body), out, err)
    return 0 if ok else 1


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _count_rows(database: Path, username: str) -> int:
    db = _open(database)
    try:
        (count,) = db.execute(
            "SELECT count(*) FROM heartbeats WHERE user_id = ?", (username,)
        ).fetchone()
    except sqlite3.Error as exc:
        raise WakapiError(f"{database} is not a readable Wakapi SQLite database: {exc}") from None
    finally:
        db.close()
    return int(count)
