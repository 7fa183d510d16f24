"""``codetrackr backup`` and ``codetrackr restore`` for the embedded deployment.

What a backup holds: everything that cannot be rebuilt. The event log (every heartbeat and account
change), the plugins' key-value data (user data that is not on the log) and the generated JWT
secret (so sessions and tokens stay valid), plus ``manifest.json`` (what was taken, when, each
file's size and SHA-256, and the log's records per topic). The ClickHouse projections are not in
it: ``restore`` rebuilds them by replaying the restored log.

Online and consistent: each SQLite file is copied with SQLite's backup API in one step, inside one
read transaction, so the copy is the file as of one commit, never half of a group. In WAL mode a
reader does not block the writer, so ``serve`` keeps accepting heartbeats while a backup runs;
anything acknowledged before the backup started is in it. The copy is checked
(``PRAGMA quick_check``) before the manifest is written, and the manifest last: a directory
without one is not a backup.

Kafka deployments back up differently (docs/operations.md): the log lives in the brokers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventlog.factory import DEFAULT_EMBEDDED_FILE
from plugins_runtime.kv_factory import SQLITE_FILE_NAME as PLUGIN_KV_FILE

MANIFEST = "manifest.json"
FORMAT = 1
JWT_SECRET_FILE = "jwt_secret"
_CHUNK = 1 << 20


class BackupError(Exception):
    """Why a backup or restore could not be done; its text is for the operator."""


@dataclass(frozen=True, slots=True)
class BackupFile:
    name: str
    kind: str  # "sqlite" or "secret"
    required: bool


FILES = (
    BackupFile(DEFAULT_EMBEDDED_FILE, "sqlite", required=True),
    BackupFile(PLUGIN_KV_FILE, "sqlite", required=False),
    BackupFile(JWT_SECRET_FILE, "secret", required=False),
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def snapshot_sqlite(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` as of one commit, while other processes keep writing."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # pages=-1: one step, one read transaction
            dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
            (verdict,) = dst.execute("PRAGMA quick_check").fetchone()
            if verdict != "ok":
                raise BackupError(f"{source.name}: the copy failed its check: {verdict}")
        finally:
            dst.close()
    finally:
        src.close()


def _log_counts(log_file: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{log_file}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT topic, COUNT(*) FROM records GROUP BY topic")
        return {str(topic): int(count) for topic, count in rows}
    finally:
        conn.close()


def backup(data_dir: Path, target: Path) -> dict[str, Any]:
    """Write a backup of ``data_dir`` into the new directory ``target``; returns the manifest."""
    if not (data_dir / DEFAULT_EMBEDDED_FILE).exists():
        raise BackupError(f"no embedded event log in {data_dir} ({DEFAULT_EMBEDDED_FILE})")
    try:
        target.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        raise BackupError(f"{target} exists: a backup goes into a new directory") from None
    started = time.time()
    files: dict[str, dict[str, Any]] = {}
    for item in FILES:
        source = data_dir / item.name
        if not source.exists():
            continue
        copy = target / item.name
        if item.kind == "sqlite":
            snapshot_sqlite(source, copy)
        else:
            shutil.copyfile(source, copy)
        copy.chmod(0o600)
        files[item.name] = {"bytes": copy.stat().st_size, "sha256": _sha256(copy)}
    manifest = {
        "format": FORMAT,
        "started_at": started,
        "finished_at": time.time(),
        "files": files,
        "records": _log_counts(target / DEFAULT_EMBEDDED_FILE),
    }
    _write_private(target / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def read_manifest(source: Path) -> dict[str, Any]:
    """The manifest of the backup in ``source``, after checking every file against it."""
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{source} holds no {MANIFEST}: not a (finished) backup") from None
    except ValueError as exc:
        raise BackupError(f"{source / MANIFEST} is not JSON: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')!r} is not {FORMAT}")
    files = manifest.get("files") or {}
    for item in FILES:
        if item.required and item.name not in files:
            raise BackupError(f"the backup lacks {item.name}")
    for name, meta in files.items():
        if name not in {item.name for item in FILES}:
            raise BackupError(f"the manifest names an unknown file {name!r}")
        path = source / name
        if not path.is_file():
            raise BackupError(f"the backup lacks {name}")
        if _sha256(path) != meta.get("sha256"):
            raise BackupError(f"{name} does not match its checksum: the backup is damaged")
    return manifest


def restore(source: Path, data_dir: Path) -> dict[str, Any]:
    """Copy the backup in ``source`` into ``data_dir``, which must hold no event log yet (the
    projections are rebuilt afterwards by a replay). Returns the manifest."""
    manifest = read_manifest(source)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    present = [item.name for item in FILES if (data_dir / item.name).exists()]
    if present:
        raise BackupError(
            f"{data_dir} already holds {', '.join(present)}: restore into a new data directory"
        )
    for name in manifest["files"]:
        partial = data_dir / f".{name}.restoring"
        shutil.copyfile(source / name, partial)
        partial.chmod(0o600)
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        partial.rename(data_dir / name)
    return manifest
