"""The backup module on real SQLite files: a copy taken while a writer appends holds whole
groups only, plugin data comes back, and a damaged or unfinished backup is refused."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from codetrackr.backup import BackupError, backup, read_manifest, restore
from eventlog.embedded import SqliteEventLog
from eventlog.port import Record
from plugins_runtime.kv_sqlite import SqlitePluginKeyValue

TOPIC = "t"
GROUP = 10  # records appended together, so either all or none are in a copy


async def _log_with_a_writer(data: Path, target: Path) -> int:
    """Append groups of ``GROUP`` records while a backup is taken; the number appended."""
    log = SqliteEventLog(data / "eventlog.sqlite")
    await log.start()
    await log.ensure_topics({TOPIC: 1})
    stop, warm = asyncio.Event(), asyncio.Event()
    appended = 0

    async def write() -> None:
        nonlocal appended
        while not stop.is_set():
            await log.append([Record(TOPIC, b"k", b"v%d" % appended)] * GROUP)
            appended += GROUP
            if appended >= 5 * GROUP:
                warm.set()

    writer = asyncio.create_task(write())
    await warm.wait()
    await asyncio.to_thread(backup, data, target)
    stop.set()
    await writer
    await log.close()
    return appended


async def test_a_copy_taken_while_appending_holds_whole_groups(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    appended = await _log_with_a_writer(data, tmp_path / "bk")
    manifest = read_manifest(tmp_path / "bk")
    copied = manifest["records"][TOPIC]
    assert 5 * GROUP <= copied <= appended
    assert copied % GROUP == 0
    conn = sqlite3.connect(tmp_path / "bk" / "eventlog.sqlite")
    try:
        (count,) = conn.execute("SELECT COUNT(*) FROM records").fetchone()
    finally:
        conn.close()
    assert count == copied


async def test_plugin_data_is_restored_and_a_restore_never_overwrites(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    kv = SqlitePluginKeyValue(data / "plugin-kv.sqlite3")
    await kv.start()
    await kv.set("streaks", "user-1", "best", "12")
    await kv.close()
    await _log_with_a_writer(data, tmp_path / "bk")

    restore(tmp_path / "bk", tmp_path / "restored")
    kv = SqlitePluginKeyValue(tmp_path / "restored" / "plugin-kv.sqlite3")
    await kv.start()
    try:
        assert await kv.get("streaks", "user-1", "best") == "12"
    finally:
        await kv.close()
    with pytest.raises(BackupError, match="already holds"):
        restore(tmp_path / "bk", tmp_path / "restored")
    with pytest.raises(BackupError, match="exists"):
        backup(data, tmp_path / "bk")


async def test_a_damaged_or_unfinished_backup_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    await _log_with_a_writer(data, tmp_path / "bk")
    copy = tmp_path / "bk" / "eventlog.sqlite"
    raw = bytearray(copy.read_bytes())
    raw[-100] ^= 0xFF
    copy.write_bytes(bytes(raw))
    with pytest.raises(BackupError, match="does not match its checksum"):
        restore(tmp_path / "bk", tmp_path / "restored")
    assert not (tmp_path / "restored" / "eventlog.sqlite").exists()

    (tmp_path / "bk" / "manifest.json").unlink()
    with pytest.raises(BackupError, match="not a \\(finished\\) backup"):
        restore(tmp_path / "bk", tmp_path / "restored")
    with pytest.raises(BackupError, match="no embedded event log"):
        backup(tmp_path / "empty", tmp_path / "bk2")
