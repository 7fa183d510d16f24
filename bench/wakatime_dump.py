"""WakaTime data-dump exports (the heartbeats kind), generated with their known totals: for
``make bench`` (figure 12) and the tests (``tests/e2e/test_wakapi.py``)."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

USER_AGENT = "wakatime/v1.98.1 (linux-6.8.0-x86_64) go1.23.1 vscode/1.95.0 vscode-wakatime/25.0.1"


def _heartbeat(t: float, n: int, project: str) -> dict[str, Any]:
    return {
        "id": f"hb-{n}",
        "time": t,
        "entity": f"/home/me/{project}/src/file{n % 9}.py",
        "type": "file",
        "category": "coding",
        "project": project,
        "branch": "main",
        "language": "Python",
        "dependencies": ["os", "json"],
        "is_write": n % 4 == 0,
        "lines": 200 + n % 50,
        "lineno": 10 + n % 40,
        "cursorpos": 100 + n,
        "user_agent_id": "ua-1",
        "machine_name_id": "m-1",
        "created_at": datetime.fromtimestamp(t).isoformat() + "Z",
    }


def write_dump(
    out: IO[str],
    days: list[date],
    *,
    tz: str = "America/New_York",
    per_day: int = 100,
    spacing_s: int = 120,
    extra: dict[date, list[dict[str, Any]]] | None = None,
) -> dict[date, int]:
    """Writes an export to ``out`` one day at a time and returns each day's coding seconds by
    WakaTime's rule: ``per_day`` heartbeats ``spacing_s`` apart from 09:00 local, in two runs
    separated by an hour (so each day is two sessions), each adding ``(k - 1) * spacing_s``."""
    zone = ZoneInfo(tz)
    out.write('{"user": {"username": "me", "timezone": ' + json.dumps(tz) + "},")
    out.write(' "range": {"start": 0, "end": 0},')
    out.write(' "user_agents": [{"id": "ua-1", "value": ' + json.dumps(USER_AGENT) + "}],")
    out.write(' "machine_names": [{"id": "m-1", "value": "laptop"}],')
    out.write(' "days": [')
    totals: dict[date, int] = {}
    n = 0
    first = per_day // 2
    for i, day in enumerate(days):
        start = datetime.combine(day, time(9), tzinfo=zone).timestamp()
        beats = []
        for k in range(per_day):
            gap = 3600 if k >= first else 0
            beats.append(_heartbeat(start + k * spacing_s + gap, n, f"proj{i % 3}"))
            n += 1
        beats += (extra or {}).get(day, [])
        totals[day] = ((first - 1) + (per_day - first - 1)) * spacing_s
        out.write(("," if i else "") + json.dumps({"date": day.isoformat(), "heartbeats": beats}))
    out.write("]}")
    return totals


def dump_file(path: Path, days: list[date], **kwargs: Any) -> dict[date, int]:
    with path.open("w") as out:
        return write_dump(out, days, **kwargs)


def spread_days(last: date, years: int, every: int) -> list[date]:
    """Every ``every``-th day over ``years`` years up to ``last``."""
    first = last - timedelta(days=365 * years)
    count = (last - first).days // every
    return [first + timedelta(days=every * i) for i in range(count + 1)]
