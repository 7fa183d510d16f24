"""Export formats, pure: records in, bytes out, one block at a time (no I/O, no clock).

Heartbeats are exported as flat records: ``id`` (the handle ``DELETE .../heartbeats.bulk``
takes), ``time`` and ``local_date``, then every other field of the canonical
:class:`~schemas.heartbeat.Heartbeat` in its declared order (a field added there is exported
without a change here). ``time`` and ``received_at`` are epoch seconds at millisecond precision,
as WakaTime and the import format write them; every other time is ISO 8601 UTC.

Each formatter turns an iterator of record blocks into an iterator of byte chunks, one chunk per
block and nothing held across blocks, so the size of an export never shows in memory.

* JSON: an array, a record per line (``[`` and ``]`` on lines of their own).
* CSV: RFC 4180 through the standard library's ``csv`` writer (a header row, ``\\r\\n`` line ends,
  fields holding commas, quotes or line breaks quoted). ``null`` is an empty field, booleans are
  ``true``/``false``, ``dependencies`` is a JSON array. Values are written as stored: no
  spreadsheet formula escaping, which would alter the data an export exists to return.

Text that is not valid Unicode (a lone surrogate) cannot be UTF-8: it is written as its ``\\uXXXX``
escape, which in JSON is the very same string.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from accounts.plugins import PluginCatalog
from accounts.state import ApiKey, ContactMessage, Session, User
from accounts.themes import ThemeCatalog
from projections.daily import DailyRow
from projections.leaderboard import Member, WeeklyRow, iso_week_id
from schemas.heartbeat import Heartbeat

GDPR_FORMAT = "codetrackr.gdpr-export"
GDPR_VERSION = 1

# Exported after `id` and `time`: every other stored field, in the Heartbeat's order.
_REST: tuple[str, ...] = tuple(
    name
    for name in Heartbeat.model_fields
    if name not in ("schema_version", "user_id", "event_id", "time")
)
HEARTBEAT_COLUMNS: tuple[str, ...] = ("id", "time", "local_date", *_REST)

Record = Mapping[str, Any]
Chunks = Generator[bytes, None, None]


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def heartbeat_record(stored: Record) -> dict[str, Any]:
    """A record of the store's heartbeat stream as exported (keys in :data:`HEARTBEAT_COLUMNS`)."""
    day = stored["local_date"]
    exported = {
        "id": stored["event_id"],
        "time": stored["time"],
        "local_date": day.isoformat() if isinstance(day, date) else str(day),
    }
    for name in _REST:
        exported[name] = stored[name]
    return exported


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "backslashreplace")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_array(blocks: Iterable[Sequence[Any]], *, end: str = "\n") -> Chunks:
    """``[`` the items of every block, one per line ``]``, a chunk per non-empty block; ``end``
    follows the array."""
    opened = False
    for block in blocks:
        if not block:
            continue
        body = ",\n".join(map(_json, block))
        yield _utf8((",\n" if opened else "[\n") + body)
        opened = True
    yield _utf8(("\n]" if opened else "[]") + end)


def json_document(head: Mapping[str, Any], arrays: Sequence[tuple[str, Iterator[bytes]]]) -> Chunks:
    """One JSON object: the members of ``head``, then each named array streamed in turn."""
    opening = _json(dict(head))[:-1]  # the object without its closing brace
    separator = "," if head else ""
    yield _utf8(opening)
    for name, chunks in arrays:
        yield _utf8(f"{separator}\n{_json(name)}:")
        separator = ","
        yield from chunks
    yield b"\n}\n"


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return _json(list(value))
    return value


def csv_rows(
    blocks: Iterable[Sequence[Record]], columns: Sequence[str] = HEARTBEAT_COLUMNS
) -> Chunks:
    """A header row, then a chunk of rows per non-empty block (records keyed by ``columns``).

    The header goes out with the first block's rows, so the first chunk is only ready once the
    first block could be read (what lets a failed read still be answered with an error)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for block in blocks:
        if not block:
            continue
        writer.writerows([_cell(record[name]) for name in columns] for record in block)
        yield _utf8(buffer.getvalue())
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # no rows at all: the header alone
        yield _utf8(buffer.getvalue())


# ---- the GDPR export's sections ---------------------------------------------------------------


_CREDENTIAL_WORDS = ("hash", "secret", "token", "password")


def _without_credentials(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Defence in depth: leave out any field named like a credential (none holds one today)."""
    return {
        name: value
        for name, value in fields.items()
        if not any(word in name for word in _CREDENTIAL_WORDS)
    }


def user_section(user: User) -> dict[str, Any]:
    """Every field of the account as folded from its events (a field added there is exported)."""
    profile = _without_credentials(asdict(user))
    profile["created_at"] = iso(user.created_at)
    return profile


def key_section(key: ApiKey, last_used: float | None) -> dict[str, Any]:
    """What identifies a key to its owner; never the key or its hash."""
    return {
        "id": key.key_id,
        "name": key.name,
        "key_prefix": key.key_prefix,
        "read_only": key.read_only,
        "created_at": iso(key.created_at),
        "last_used_at": iso(last_used) if last_used is not None else None,
    }


def session_section(session: Session) -> dict[str, Any]:
    """A logged-in device; never its refresh token's hash."""
    return {
        "id": session.session_id,
        "method": session.method,
        "device": session.device,
        "created_at": iso(session.created_at),
        "refreshed_at": iso(session.refreshed_at),
        "expires_at": iso(session.expires_at),
    }


def message_section(message: ContactMessage) -> dict[str, Any]:
    """A message someone sent the user (a hire inquiry), as the user receives it."""
    return {
        "id": message.message_id,
        "sender_user_id": message.sender_user_id,
        "sender_name": message.sender_name,
        "sender_email": message.sender_email,
        "message": message.message,
        "sent_at": iso(message.sent_at),
    }


def member_section(member: Member | None) -> dict[str, Any] | None:
    if member is None:
        return None
    return {
        "username": member.username,
        "eligible": member.eligible,
        "country": member.country or None,
        "available_for_hire": member.available_for_hire,
        "languages_public": member.languages_public,
    }


def daily_section(row: DailyRow) -> dict[str, Any]:
    return {
        "date": row.date.isoformat(),
        "timezone": row.timezone,
        "total_seconds": row.total_seconds,
        "heartbeat_count": row.heartbeat_count,
        "first_time": iso(row.first_time) if row.heartbeat_count else None,
        "last_time": iso(row.last_time) if row.heartbeat_count else None,
        "breakdown": row.breakdown,
    }


def weekly_section(row: WeeklyRow) -> dict[str, Any]:
    return {
        "week": iso_week_id(row.week),
        "start": row.week.isoformat(),
        "total_seconds": row.total_seconds,
        "breakdown": row.breakdown,
    }


def account_event_section(raw: str) -> dict[str, Any]:
    """An archived account event (the profile's history), credentials left out."""
    event: dict[str, Any] = json.loads(raw)
    return _without_credentials(event)


def deletion_section(deletion: tuple[date, str, float]) -> dict[str, Any]:
    day, heartbeat_id, deleted_at = deletion
    return {"date": day.isoformat(), "id": heartbeat_id, "deleted_at": iso(deleted_at)}


def plugin_section(
    catalog: PluginCatalog, user_id: str, key_values: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    """The user's side of the plugin store: installs, settings, reviews and reports they wrote,
    plugins they published (with every version's scripts) and what plugins keep for them in
    their key-value namespaces (plugin -> key -> value)."""
    reviews = [
        {
            "plugin": r.name,
            "rating": r.rating,
            "comment": r.comment,
            "updated_at": iso(r.updated_at),
        }
        for by_user in catalog.reviews.values()
        for r in by_user.values()
        if r.user_id == user_id
    ]
    reports = [
        {"plugin": r.name, "reason": r.reason, "reported_at": iso(r.reported_at)}
        for found in catalog.reports.values()
        for r in found
        if r.user_id == user_id
    ]
    return {
        "installed": [
            {
                "plugin": i.name,
                "installed_at": iso(i.installed_at),
                "suspended_reason": i.suspended_reason,
            }
            for i in catalog.installed_of(user_id)
        ],
        "settings": [
            {"plugin": s.name, "settings": s.settings, "updated_at": iso(s.updated_at)}
            for s in catalog.settings_of(user_id)
        ],
        "reviews": sorted(reviews, key=lambda r: r["plugin"]),
        "reports": reports,
        "published": [
            {
                "name": p.name,
                "display_name": p.display_name,
                "description": p.description,
                "banned": p.banned,
                "versions": [
                    {
                        "version": v.version,
                        "published_at": iso(v.published_at),
                        "script": v.script,
                        "server_script": v.server_script,
                    }
                    for v in p.versions
                ],
            }
            for p in catalog.published_by(user_id)
        ],
        "key_value": {plugin: dict(items) for plugin, items in sorted(key_values.items())},
    }


def theme_section(catalog: ThemeCatalog, user_id: str) -> dict[str, Any]:
    """The user's side of the theme store: the themes installed, the active one and the custom
    variables (``user_theme_prefs``), and the themes they published, as stored."""
    prefs = catalog.prefs_of(user_id)
    return {
        "installed": [
            {"theme_id": i.theme_id, "installed_at": iso(i.installed_at)}
            for i in catalog.installed_of(user_id)
        ],
        "active_theme_id": prefs.active_theme_id if prefs is not None else None,
        "custom_vars": dict(prefs.custom_vars) if prefs is not None else {},
        "prefs_updated_at": iso(prefs.updated_at) if prefs is not None else None,
        "published": [
            {
                "id": t.theme_id,
                "name": t.name,
                "display_name": t.display_name,
                "description": t.description,
                "version": t.version,
                "icon": t.icon,
                "variables": dict(t.variables),
                "custom_css": t.custom_css,
                "created_at": iso(t.created_at),
                "updated_at": iso(t.updated_at),
            }
            for t in catalog.published_by(user_id)
        ],
    }
