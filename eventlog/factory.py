"""Building the event log adapter a URL names (used by the composition root).

* ``embedded://`` → :class:`eventlog.embedded.SqliteEventLog` on ``<data_dir>/eventlog.sqlite``;
  ``embedded:///abs/path.sqlite`` → that file.
* ``kafka://host:port[,host:port...]`` → :class:`eventlog.kafka.KafkaEventLog`.

The adapter is returned unstarted; the caller owns ``start`` and ``close``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from eventlog.embedded import SqliteEventLog
from eventlog.kafka import from_url as kafka_from_url
from eventlog.port import EventLog

__all__ = ["DEFAULT_EMBEDDED_FILE", "open_event_log"]

DEFAULT_EMBEDDED_FILE = "eventlog.sqlite"


def open_event_log(url: str, data_dir: Path) -> EventLog:
    """The adapter for ``url``; raises ``ValueError`` for an unknown scheme or malformed URL."""
    parts = urlsplit(url)
    if parts.scheme == "embedded":
        if parts.netloc or parts.query or parts.fragment:
            raise ValueError(
                f"event log URL {url!r}: use embedded:// or embedded:///absolute/path.sqlite"
            )
        path = Path(parts.path) if parts.path not in ("", "/") else data_dir / DEFAULT_EMBEDDED_FILE
        return SqliteEventLog(path)
    if parts.scheme == "kafka":
        return kafka_from_url(url)
    raise ValueError(
        f"event log URL {url!r}: unknown scheme {parts.scheme!r};"
        " expected embedded://, embedded:///path.sqlite or kafka://host:port[,host:port]"
    )
