"""``codetrackr admin``: the instance admin's commands, a thin client of the admin API.

It talks to a running server (``--url``, or ``CODETRACKR_ADMIN_URL``, default
``http://127.0.0.1:8000``) with a full-access API key of an account named in
``CODETRACKR_ADMINS``, read from ``CODETRACKR_ADMIN_KEY`` (never a command-line argument, which
other users of the machine could read). Every action is an event on the log, appended by the
server as for the same request from the web; this works the same on both deployments, and while
``serve`` holds the embedded log.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
KEY_ENV = "CODETRACKR_ADMIN_KEY"
URL_ENV = "CODETRACKR_ADMIN_URL"


def add_parser(sub: Any) -> None:
    admin = sub.add_parser(
        "admin", help=f"instance admin commands against a running server ({KEY_ENV})"
    )
    admin.add_argument(
        "--url", default=None, help=f"the server (default ${URL_ENV} or {DEFAULT_URL})"
    )
    admin.add_argument("--json", action="store_true", help="print the server's JSON answers")
    cmd = admin.add_subparsers(dest="admin_command", required=True)
    users = cmd.add_parser("users", help="list accounts")
    users.add_argument("--search", default="", help="part of a username")
    users.add_argument("--limit", type=int, default=100)
    users.add_argument("--offset", type=int, default=0)
    ban = cmd.add_parser("ban", help="suspend an account: its requests are refused")
    ban.add_argument("username")
    ban.add_argument("--reason", default="", help="shown to the user in every refusal")
    unban = cmd.add_parser("unban", help="lift an account's suspension")
    unban.add_argument("username")
    keys = cmd.add_parser("keys", help="a user's API keys; --revoke ID revokes one")
    keys.add_argument("username")
    keys.add_argument("--revoke", metavar="KEY_ID", default=None)
    plugins = cmd.add_parser("plugins", help="the plugin store: reports, ban, unban, delete")
    plugins.add_argument("action", choices=["reports", "ban", "unban", "delete"])
    plugins.add_argument("name", nargs="?", default=None, help="the plugin (not for reports)")
    plugins.add_argument("--reason", default="")


def _request(
    http: httpx.Client, method: str, path: str, *, body: Any = None, **params: Any
) -> dict[str, Any]:
    response = http.request(method, path, json=body, params=params or None)
    try:
        answer: dict[str, Any] = response.json()
    except ValueError:
        answer = {"error": {"message": response.text[:500]}}
    if response.status_code >= 400:
        message = answer.get("error", {}).get("message", response.reason_phrase)
        raise SystemExit(f"{method} {path}: {response.status_code} {message}")
    return answer


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [
        [str(row.get(c, "") if row.get(c) is not None else "") for c in columns] for row in rows
    ]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        print(f"set {KEY_ENV} to a full-access API key of an admin account", file=sys.stderr)
        return 2
    url = args.url or os.environ.get(URL_ENV) or DEFAULT_URL
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30.0) as http:
        answer, text = _dispatch(http, args)
    print(json.dumps(answer, indent=2) if args.json else text)
    return 0


def _dispatch(http: httpx.Client, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    command = args.admin_command
    if command == "users":
        answer = _request(
            http,
            "GET",
            "/api/v1/admin/users",
            q=args.search,
            limit=args.limit,
            offset=args.offset,
        )
        columns = ["username", "created_at", "identity_provider", "suspended", "api_keys"]
        total = answer["total"]
        return answer, f"{_table(answer['users'], columns)}\n({total} account{'s' * (total != 1)})"
    if command in ("ban", "unban"):
        action = "suspend" if command == "ban" else "unsuspend"
        body = {"reason": args.reason} if command == "ban" else None
        answer = _request(http, "POST", f"/api/v1/admin/users/{args.username}/{action}", body=body)
        state = "suspended" if answer["user"]["suspended"] else "active"
        return answer, f"{args.username}: {state}"
    if command == "keys":
        base = f"/api/v1/admin/users/{args.username}/keys"
        if args.revoke:
            answer = _request(http, "DELETE", f"{base}/{args.revoke}")
            return answer, f"revoked key {args.revoke} of {args.username}"
        answer = _request(http, "GET", base)
        columns = ["id", "name", "key_prefix", "read_only", "created_at", "last_used_at"]
        return answer, _table(answer["keys"], columns)
    if args.action == "reports":
        answer = _request(http, "GET", "/api/v1/admin/store/reports")
        columns = ["name", "reason", "reported_at", "banned"]
        return answer, _table(answer.get("reports", []), columns)
    if not args.name:
        raise SystemExit(f"codetrackr admin plugins {args.action} needs a plugin name")
    if args.action == "delete":
        answer = _request(http, "DELETE", f"/api/v1/admin/store/{args.name}")
        return answer, f"deleted plugin {args.name}"
    body = {"reason": args.reason} if args.action == "ban" else None
    answer = _request(http, "POST", f"/api/v1/admin/store/{args.name}/{args.action}", body=body)
    return answer, f"plugin {args.name}: {args.action}ned"
