"""``codetrackr import claude|codex [PATH...]``: a coding assistant's own session logs, imported
into CodeTrackr (docs/ai.md#transcripts).

``claude`` reads Claude Code's per-session transcripts (``~/.claude/projects/**/*.jsonl``, every
subagent's file included) and its ``~/.claude.json``; ``codex`` reads OpenAI Codex CLI's
rollouts (``~/.codex/sessions/**/rollout-*.jsonl``). A directory is searched for ``*.jsonl``
files; a file is read as it is (a ``.json`` one as a ``claude.json``). The server parses the
lines (``POST /api/v1/ai/import/transcript``), derives every record's id from what it holds,
appends what it does not hold yet and answers with what it imported, what it already had and
which lines it skipped; this command shows a progress bar (bytes sent) and then that summary.

It talks to the server with your API key, configured as for ``claude-hook`` (``--api-url`` and
``--api-key``, ``CODETRACKR_API_URL`` and ``CODETRACKR_API_KEY``, or ``api_url``/``api_key`` in
``~/.codetrackr/config.cfg``), and it is offline-safe the same way: what cannot be sent now (no
network, the server down or busy, a key it refuses) goes to the hook's outbox and is sent, oldest
first, by the next import or hook event. A large file is sent in parts of whole lines (a tool's
call and its result in two parts are then two records: the call without its result).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
from tqdm import tqdm

from codetrackr.claude_hook import Outbox, Request, _config, send

CHUNK_BYTES = 8 * 1024 * 1024  # of lines per request (the server takes up to 32 MiB)
REQUEST_TIMEOUT = 60.0
_ROLLOUT_ID = re.compile(
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jsonl$", re.I
)


@dataclass
class Summary:
    """What an import did, added up over its files."""

    files: int = 0
    imported: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    already_imported: int = 0
    skipped_lines: int = 0
    skipped: list[str] = field(default_factory=list)
    queued: int = 0
    failed: list[str] = field(default_factory=list)

    def add(self, name: str, answer: dict[str, Any]) -> None:
        counts = answer.get("imported")
        if isinstance(counts, dict):
            self.imported.update({str(k): int(v) for k, v in counts.items()})
        self.duplicates += int(answer.get("duplicates") or 0)
        self.already_imported += int(answer.get("already_imported") or 0)
        self.skipped_lines += int(answer.get("skipped_lines") or 0)
        for item in answer.get("skipped") or []:
            if len(self.skipped) < 20:
                self.skipped.append(f"{name}:{item.get('line')}: {item.get('reason')}")

    def add_claude_json(self, answer: dict[str, Any]) -> None:
        for name, kind in (
            ("projects_imported", "project"),
            ("sessions_imported", "session_start"),
            ("conversations_imported", "message"),
            ("activities_imported", "activity"),
        ):
            self.imported[kind] += int(answer.get(name) or 0)
        for error in answer.get("errors") or []:
            self.skipped_lines += 1
            if len(self.skipped) < 20:
                self.skipped.append(f".claude.json: {error}")

    def render(self, out: TextIO) -> None:
        total = sum(self.imported.values())
        out.write(f"files: {self.files}\n")
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.imported.items()) if v)
        out.write(f"imported: {total} records" + (f" ({kinds})" if kinds else "") + "\n")
        out.write(
            f"duplicates: {self.duplicates} (already imported: {self.already_imported};"
            " the rest repeated in the logs)\n"
        )
        out.write(f"skipped lines: {self.skipped_lines}\n")
        for line in self.skipped:
            out.write(f"  {line}\n")
        if self.queued:
            out.write(
                f"queued: {self.queued} requests (offline); they are sent by the next import"
                " or claude-hook event\n"
            )
        for failure in self.failed:
            out.write(f"failed: {failure}\n")


class _Offline(Exception):
    """The server cannot take requests now: what is left is queued."""


def default_paths(source: str) -> list[Path]:
    home = Path.home()
    if source == "codex":
        return [Path(os.environ.get("CODEX_HOME", home / ".codex")) / "sessions"]
    claude = Path(os.environ.get("CLAUDE_CONFIG_DIR", home / ".claude"))
    return [claude / "projects", home / ".claude.json"]


def find_files(paths: Sequence[Path]) -> list[Path]:
    """The logs under ``paths`` (directories searched for ``*.jsonl``), each once, in order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.jsonl") if p.is_file()))
        elif path.is_file():
            found.append(path)
    return list(dict.fromkeys(found))


def chunks(data: bytes, limit: int = CHUNK_BYTES) -> Iterator[tuple[int, bytes]]:
    """``data`` in parts of whole lines of at most ``limit`` bytes (a longer line is a part of
    its own), each with the number of its first line."""
    start, line = 0, 1
    while start < len(data):
        end = start + limit
        if end < len(data):
            cut = data.rfind(b"\n", start, end)
            end = cut + 1 if cut >= start else (data.find(b"\n", end) + 1 or len(data))
        part = data[start:end]
        yield line, part
        line += part.count(b"\n")
        start = end


def transcript_bodies(source: str, path: Path, data: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    """The import requests of one log file: ``(bytes, body)`` per part."""
    session_hint = path.stem
    if source == "codex":
        match = _ROLLOUT_ID.search(path.name)
        session_hint = match.group(1) if match else path.stem
    for first_line, part in chunks(data):
        body = {
            "source": source,
            "text": part.decode("utf-8", errors="replace"),
            "first_line": first_line,
            "session_hint": session_hint[:200] or None,
            "project_hint": path.parent.name[:4096] or None,
        }
        yield len(part), body


class Importer:
    def __init__(self, client: httpx.Client, outbox: Outbox, summary: Summary) -> None:
        self.client = client
        self.outbox = outbox
        self.summary = summary
        self.offline = False

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Send one request; queue it when the server cannot take it now (``None``)."""
        if not self.offline:
            try:
                answer = self.client.post("/api/v1/ai" + path, json=body)
            except httpx.HTTPError:
                answer = None
            if answer is not None and answer.status_code < 400:
                data = answer.json().get("data")
                return data if isinstance(data, dict) else {}
            retry_later = (401, 403, 408, 429)  # a key to fix, a busy server
            if (
                answer is not None
                and answer.status_code < 500
                and answer.status_code not in retry_later
            ):
                raise ValueError(_error_of(answer))  # the request itself is refused
            self.offline = True
        self.outbox.put([Request(path, body)], time.time())
        self.summary.queued += 1
        return None


def _error_of(answer: httpx.Response) -> str:
    try:
        error = answer.json().get("error")
        if isinstance(error, dict):
            return f"{answer.status_code} {error.get('message')}"
    except ValueError:
        pass
    return f"{answer.status_code} {answer.text[:200]}"


def add_parser(sub: Any) -> None:
    from codetrackr.claude_hook import add_arguments

    parser = sub.add_parser(
        "import",
        help="import Claude Code's or Codex's session logs (docs/ai.md), or your history from"
        " WakaTime or Wakapi (docs/wakapi.md), into CodeTrackr",
    )
    parser.add_argument(
        "source", choices=("claude", "codex", "wakatime", "wakapi"), help="what to import"
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="files or directories (default: ~/.claude/projects and ~/.claude.json, or"
        " ~/.codex/sessions); wakatime: the export files; wakapi: the SQLite database",
    )
    parser.add_argument(
        "--wakapi-user", default=None, help="wakapi: the Wakapi user whose heartbeats to import"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_arguments(parser)


def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Import the logs; 0 when every file was imported or queued, 1 when one was refused, 2
    when nothing could be tried (no server or key configured)."""
    settings = _config(args.config)
    base = args.api_url or os.environ.get("CODETRACKR_API_URL") or settings.get("api_url")
    key = args.api_key or os.environ.get("CODETRACKR_API_KEY") or settings.get("api_key")
    if not base or not key:
        err.write(
            "no server or API key: set api_url and api_key in ~/.codetrackr/config.cfg,"
            " CODETRACKR_API_URL and CODETRACKR_API_KEY, or --api-url and --api-key\n"
        )
        return 2
    if args.source in ("wakatime", "wakapi"):
        return _history(args, base, key, out, err)
    files = find_files(args.paths or default_paths(args.source))
    summary = Summary()
    outbox = Outbox(args.queue)
    try:
        # What an earlier run (or a hook) could not send goes first.
        send(outbox, base, key, time.monotonic() + max(1.0, args.timeout))
        total = sum(path.stat().st_size for path in files)
        headers = {"X-API-Key": key}
        with (
            httpx.Client(
                base_url=base.rstrip("/"), headers=headers, timeout=REQUEST_TIMEOUT
            ) as client,
            tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=f"import {args.source}",
                disable=args.quiet,
                file=err,
            ) as bar,
        ):
            importer = Importer(client, outbox, summary)
            for path in files:
                _import_file(importer, args.source, path, bar)
    finally:
        outbox.close()
    summary.render(out)
    return 1 if summary.failed else 0


def _history(args: argparse.Namespace, base: str, key: str, out: TextIO, err: TextIO) -> int:
    """WakaTime's exports or one Wakapi user's database (codetrackr/history_import.py)."""
    from codetrackr import history_import

    if args.source == "wakatime":
        if not args.paths:
            err.write("name the WakaTime export file(s) to import\n")
            return 2
        return history_import.upload(args.paths, base, key, quiet=args.quiet, out=out, err=err)
    if len(args.paths) != 1 or not args.wakapi_user:
        err.write("name one Wakapi SQLite database and the user: wakapi DB --wakapi-user NAME\n")
        return 2
    return history_import.upload_wakapi(
        args.paths[0], args.wakapi_user, base, key, quiet=args.quiet, out=out, err=err
    )


def _import_file(importer: Importer, source: str, path: Path, bar: tqdm[Any]) -> None:
    summary = importer.summary
    try:
        data = path.read_bytes()
    except OSError as exc:
        summary.failed.append(f"{path}: {exc.strerror or exc}")
        return
    summary.files += 1
    try:
        if path.suffix == ".json":
            try:
                document = json.loads(data)
            except ValueError:
                summary.failed.append(f"{path}: not JSON")
                bar.update(len(data))
                return
            answer = importer.post("/import/claude-data", document)
            if answer is not None:
                summary.add_claude_json(answer)
            bar.update(len(data))
            return
        for size, body in transcript_bodies(source, path, data):
            answer = importer.post("/import/transcript", body)
            if answer is not None:
                summary.add(path.name, answer)
            bar.update(size)
    except ValueError as exc:
        summary.failed.append(f"{path}: {exc}")
