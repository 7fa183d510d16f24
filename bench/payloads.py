"""What the bench sends: WakaTime bulk items, CodeTrackr import items, and the canonical events
the server would append for them (for the raw-append baseline).

All times are on UTC days (every bench account has timezone UTC), counted back from today, so a
figure's data lands on known local days.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.normalize import RequestMeta, wakatime_item
from schemas.events import HeartbeatsReceived, encode_event
from schemas.heartbeat import Heartbeat

# What the legacy WakaTime CLI sends (and the editor/OS the server derives from it).
WAKATIME_USER_AGENT = (
    "wakatime/13.1.0 (Linux-6.1.0-x86_64-with-glibc2.36) Python3.11.2.final.0 "
    "vscode/1.95.0 vscode-wakatime/24.6.0"
)
_PROJECTS = ("api", "web", "infra", "mobile", "docs", "ml", "cli", "sdk", "billing", "search")
_LANGUAGES = (
    ("Python", "py"),
    ("TypeScript", "ts"),
    ("Go", "go"),
    ("Rust", "rs"),
    ("SQL", "sql"),
    ("Markdown", "md"),
    ("YAML", "yaml"),
    ("Bash", "sh"),
)
_DEPENDENCIES = ("httpx", "pydantic", "fastapi", "sqlalchemy", "pytest", "numpy")


def utc_day_start(days_ago: int) -> float:
    """Epoch seconds of 00:00 UTC, ``days_ago`` days before today (UTC)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today - timedelta(days=days_ago)).timestamp()


def utc_date(days_ago: int) -> str:
    return datetime.fromtimestamp(utc_day_start(days_ago), UTC).date().isoformat()


def wakatime_items(
    start: float, count: int, seed: int, *, step_s: float = 120.0
) -> list[dict[str, Any]]:
    """``count`` heartbeats as the WakaTime CLI sends them, ``step_s`` apart from ``start``.

    A developer switching file every ~20 heartbeats and project every ~200; every third
    heartbeat is a write. At the default two minutes apart a day holds at most 720 of them, a
    very busy developer's day (the projector recomputes whole days, so this matters).
    """
    items: list[dict[str, Any]] = []
    for i in range(count):
        n = seed * 7919 + i
        project = _PROJECTS[(n // 200) % len(_PROJECTS)]
        language, ext = _LANGUAGES[(n // 60) % len(_LANGUAGES)]
        module = f"pkg{(n // 200) % 9}/module_{(n // 20) % 37}.{ext}"
        items.append(
            {
                "entity": f"/home/dev/src/{project}/{module}",
                "type": "file",
                "category": "coding",
                "time": start + i * step_s,
                "project": project,
                "branch": "main" if (n // 500) % 3 else "feature/bench",
                "language": language,
                "dependencies": list(_DEPENDENCIES[: n % 4]),
                "lines": 120 + n % 900,
                "lineno": 1 + n % 120,
                "cursorpos": 1 + n % 80,
                "is_write": i % 3 == 0,
                "user_agent": WAKATIME_USER_AGENT,
            }
        )
    return items


def days_used(count: int, days: int) -> int:
    """How many of ``days`` days :func:`import_items` fills with ``count`` heartbeats."""
    per_day = -(-count // days)
    return -(-count // per_day)


def import_items(count: int, days: int, *, step_s: int = 10) -> Iterator[dict[str, Any]]:
    """``count`` CodeTrackr import items over the ``days`` UTC days before today, oldest first.

    Each heartbeat lasts ``step_s`` seconds and the next one starts where it ends, from 06:00
    each day, so the coding time is exactly ``count * step_s`` seconds whatever the grouping
    (project changes every 400 heartbeats, language every 150, file every 25).
    """
    per_day = -(-count // days)
    if per_day * step_s > 17 * 3600:
        raise ValueError(f"{per_day} heartbeats of {step_s}s do not fit in one day; use more days")
    emitted = 0
    for days_ago in range(days, 0, -1):
        first = utc_day_start(days_ago) + 6 * 3600
        for j in range(min(per_day, count - emitted)):
            n = emitted + j
            project = _PROJECTS[(n // 400) % len(_PROJECTS)]
            language, ext = _LANGUAGES[(n // 150) % len(_LANGUAGES)]
            module = f"pkg{(n // 400) % 9}/module_{(n // 25) % 41}.{ext}"
            yield {
                "project": project,
                "file": f"/home/dev/src/{project}/{module}",
                "lang": language,
                "time": first + j * step_s,
                "duration": step_s,
                "branch": "main",
                "category": "coding",
                "editor": "vscode",
                "os": "Linux",
                "machine": "bench-box",
                "is_write": n % 3 == 0,
            }
        emitted += min(per_day, count - emitted)
        if emitted >= count:
            return


def canonical_record(user_id: str, items: Sequence[dict[str, Any]]) -> bytes:
    """The encoded ``HeartbeatsReceived`` the server appends for one WakaTime bulk request.

    Built with the server's own normalization, so it has the same fields, shape and size.
    """
    meta = RequestMeta(
        user_id=user_id, received_at=time.time(), timezone="UTC", user_agent=WAKATIME_USER_AGENT
    )
    heartbeats: list[Heartbeat] = []
    for index, item in enumerate(items):
        result = wakatime_item(item, index, meta)
        if not isinstance(result, Heartbeat):
            raise ValueError(f"bench payload rejected by normalization: {result}")
        heartbeats.append(result)
    event = HeartbeatsReceived(
        event_id=uuid.uuid4().hex,
        user_id=user_id,
        occurred_at=time.time(),
        heartbeats=tuple(heartbeats),
    )
    return encode_event(event)


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
