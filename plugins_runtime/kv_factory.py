"""Pick the plugin key-value adapter from the settings: Redis when a URL is given, else the
embedded SQLite file in the data directory."""

from __future__ import annotations

from pathlib import Path

from plugins_runtime.kv import PluginKeyValue
from plugins_runtime.kv_redis import RedisPluginKeyValue
from plugins_runtime.kv_sqlite import SqlitePluginKeyValue

__all__ = ["SQLITE_FILE_NAME", "open_plugin_kv"]

SQLITE_FILE_NAME = "plugin-kv.sqlite3"


def open_plugin_kv(redis_url: str | None, data_dir: Path) -> PluginKeyValue:
    """The adapter for this deployment, not yet started (no I/O here); the caller starts and
    closes it."""
    if redis_url:
        return RedisPluginKeyValue(redis_url)
    return SqlitePluginKeyValue(data_dir / SQLITE_FILE_NAME)
