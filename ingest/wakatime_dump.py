"""WakaTime's data-dump export ("heartbeats" kind), read as a stream.

WakaTime's Settings → Export gives a JSON file of this shape (one object; only the keys used here
are shown)::

    {"user": {"username": ..., "timezone": "Europe/Berlin", ...},
     "range": {"start": ..., "end": ...},
     "days": [{"date": "2024-01-02",
               "heartbeats": [{"id": ..., "time": 1704186000.123, "entity": ..., "type": "file",
                               "category": "coding", "project": ..., "branch": ..., "language": ...,
                               "dependencies": [...], "is_write": true, "lines": 120, "lineno": 40,
                               "cursorpos": 812, "user_agent_id": ..., "machine_name_id": ...},
                              ...]},
              ...]}

Each heartbeat is WakaTime's own heartbeat schema, so it is recorded exactly as the same heartbeat
sent by an editor would be (``ingest.normalize.wakatime_item``): the same deterministic event id,
hence importing a file twice, or a file that overlaps what editors already sent, adds nothing. A
heartbeat's ``user_agent_id`` and ``machine_name_id`` name entries of WakaTime's user-agent and
machine lists; when the file carries them (``user_agents`` / ``machine_names``: objects with
``id`` and ``value``, as WakaTime's API lists them) before the days, the editor, OS and machine
are taken from them; otherwise those stay unknown (WakaTime's heartbeats carry no names).

The file is parsed event by event (``ijson``, its C backend), so memory does not grow with its
size: a multi-gigabyte export is read in constant memory. The other export kind, daily summaries
(``days`` of ``grand_total``, ``projects``, ...), holds no heartbeats and is refused by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import ijson

__all__ = ["DumpError", "DumpReader"]

_NAMED_LISTS = {"user_agents": "user_agent", "machine_names": "machine"}


class DumpError(ValueError):
    """The file is not a readable WakaTime heartbeats export (malformed JSON, another shape)."""


@dataclass
class DumpReader:
    """Reads one export; :meth:`heartbeats` yields ``(date, heartbeat)`` in file order.

    ``timezone`` is the exporting user's zone once the ``user`` object has been read (WakaTime
    writes it first); ``days`` counts the days seen.
    """

    stream: IO[bytes]
    timezone: str | None = None
    days: int = 0
    _names: dict[str, dict[str, str]] = field(default_factory=dict)

    def heartbeats(self) -> Iterator[tuple[str, dict[str, Any]]]:
        builder: Any = None
        day = ""
        saw_days = False
        summaries = False
        try:
            for prefix, event, value in ijson.parse(self.stream, use_float=True):
                if builder is not None:
                    if prefix == "days.item.heartbeats.item" and event == "end_map":
                        yield day, self._named(builder.value)
                        builder = None
                    else:
                        builder.event(event, value)
                    continue
                if prefix == "days.item.heartbeats.item" and event == "start_map":
                    builder = ijson.ObjectBuilder()
                    builder.event(event, value)
                elif prefix == "days.item.date" and event == "string":
                    day = value
                elif prefix == "days.item" and event == "start_map":
                    self.days += 1
                    day = ""
                elif prefix == "days" and event == "start_array":
                    saw_days = True
                elif prefix in ("days.item.grand_total", "days.item.projects"):
                    summaries = True
                elif prefix == "user.timezone" and event == "string":
                    self.timezone = value
                elif prefix == "" and event not in ("start_map", "end_map", "map_key"):
                    raise DumpError("expected a JSON object with a `days` list")
                elif event == "start_map" and prefix.endswith(".item"):
                    self._start_named(prefix)
                elif event in ("string", "number") and prefix.count(".") == 2:
                    self._named_field(prefix, value)
        except ijson.JSONError as exc:
            raise DumpError(f"the file is not valid JSON: {exc}") from None
        if summaries:
            raise DumpError(
                "this is WakaTime's daily-summaries export; export the heartbeats instead"
                " (Settings, Export, kind: heartbeats)"
            )
        if not saw_days:
            raise DumpError("no `days` list: not a WakaTime heartbeats export")

    # user_agents / machine_names: [{"id": ..., "value": ...}], read as the file goes.
    def _start_named(self, prefix: str) -> None:
        name = prefix.removesuffix(".item")
        if name in _NAMED_LISTS:
            self._names.setdefault(name, {})
            self._names[f"{name}:current"] = {}

    def _named_field(self, prefix: str, value: Any) -> None:
        name, _, key = prefix.partition(".item.")
        if name not in _NAMED_LISTS or key not in ("id", "value", "name"):
            return
        current = self._names[f"{name}:current"]
        current["value" if key == "name" and "value" not in current else key] = str(value)
        if "id" in current and "value" in current:
            self._names[name][current.pop("id")] = current.pop("value")

    def _named(self, heartbeat: dict[str, Any]) -> dict[str, Any]:
        for name, target in _NAMED_LISTS.items():
            ref = heartbeat.get(f"{name[:-1]}_id")
            value = self._names.get(name, {}).get(str(ref)) if ref is not None else None
            if value is not None and not heartbeat.get(target):
                heartbeat[target] = value
        return heartbeat
