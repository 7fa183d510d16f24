"""A stored heartbeat in WakaTime's field names (what the write and read APIs answer with)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.heartbeat import Heartbeat


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def heartbeat_view(hb: Heartbeat) -> dict[str, Any]:
    """``id`` is the event id: the handle ``DELETE .../heartbeats.bulk`` takes."""
    received = _iso(hb.received_at)
    return {
        "id": hb.event_id,
        "user_id": hb.user_id,
        "entity": hb.entity,
        "type": hb.type,
        "category": hb.category,
        "time": hb.time,
        "project": hb.project,
        "project_root_count": hb.project_root_count,
        "branch": hb.branch,
        "language": hb.language,
        "dependencies": list(hb.dependencies),
        "lines": hb.lines,
        "line_additions": hb.line_additions,
        "line_deletions": hb.line_deletions,
        "lineno": hb.lineno,
        "cursorpos": hb.cursorpos,
        "is_write": hb.is_write,
        "machine_name_id": hb.machine,
        "user_agent_id": hb.user_agent,
        "created_at": received,
        "modified_at": received,
    }
