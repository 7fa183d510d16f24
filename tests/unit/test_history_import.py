"""A Wakapi database read as a WakaTime export (codetrackr/history_import.py), without a server."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from codetrackr.history_import import WakapiError, wakapi_export
from ingest.wakatime_dump import DumpReader
from tests.support.wakapi_db import wakapi_database

T0 = 1_704_189_600.0  # 2024-01-02 10:00 UTC


def beat(t: float, user: str = "alice", **extra: object) -> dict[str, object]:
    return {
        "user_id": user,
        "entity": "/src/app.go",
        "type": "file",
        "category": "coding",
        "project": "app",
        "language": "Go",
        "is_write": 1,
        "editor": "vscode",
        "operating_system": "Linux",
        "machine": "desk",
        "time": t,
        "line_no": 12,
        "cursor_pos": 30,
        **extra,
    }


@pytest.mark.parametrize("text_time", [False, True])
def test_one_users_rows_become_an_export_by_day(tmp_path: Path, text_time: bool) -> None:
    db = tmp_path / "wakapi.db"
    beats = [beat(T0 + 60 * i) for i in range(3)] + [beat(T0 + 86400), beat(T0 + 5, user="bob")]
    wakapi_database(db, {"alice": "Europe/Berlin", "bob": ""}, beats, text_time=text_time)
    body = b"".join(wakapi_export(db, "alice"))
    reader = DumpReader(io.BytesIO(body))
    items = list(reader.heartbeats())
    assert reader.timezone == "Europe/Berlin"
    assert [day for day, _ in items] == ["2024-01-02"] * 3 + ["2024-01-03"]
    first = items[0][1]
    assert first["time"] == pytest.approx(T0)
    assert first["os"] == "Linux"
    assert first["editor"] == "vscode"
    assert first["lineno"] == 12
    assert first["cursorpos"] == 30
    assert first["is_write"] is True
    assert "user_id" not in first


def test_a_user_without_heartbeats_is_an_empty_export(tmp_path: Path) -> None:
    db = tmp_path / "wakapi.db"
    wakapi_database(db, {"carol": "UTC"}, [])
    reader = DumpReader(io.BytesIO(b"".join(wakapi_export(db, "carol"))))
    assert list(reader.heartbeats()) == []
    assert reader.timezone == "UTC"


def test_what_is_not_a_wakapi_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "wakapi.db"
    wakapi_database(db, {"alice": "UTC"}, [beat(T0)])
    with pytest.raises(WakapiError, match="no Wakapi user 'nobody'"):
        next(wakapi_export(db, "nobody"))
    other = tmp_path / "other.db"
    other.write_bytes(b"not a database at all, just text" * 100)
    with pytest.raises(WakapiError, match="not a Wakapi SQLite database"):
        next(wakapi_export(other, "alice"))
    with pytest.raises(WakapiError):
        next(wakapi_export(tmp_path / "missing.db", "alice"))
