"""``codetrackr sql "SELECT ..."``: an analyst's query against a running server's read-only SQL
endpoint (``/clickhouse/``, docs/analytics.md), printed as a table, CSV or JSON, or written as
Parquet. The key (read-only is enough) comes from ``CODETRACKR_SQL_KEY`` (or
``CODETRACKR_ADMIN_KEY``), the server from ``--url``, ``CODETRACKR_SQL_URL`` or
``CODETRACKR_ADMIN_URL`` (default ``http://127.0.0.1:8000``). Tables and formats are
ClickHouse's own (``PrettyCompactMonoBlock``, ``CSVWithNames``, ``JSON``, ``Parquet``), so what
is printed is what any ClickHouse client would show.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from codetrackr import admin_cli

FORMATS = {
    "table": "PrettyCompactMonoBlock",
    "csv": "CSVWithNames",
    "tsv": "TabSeparatedWithNames",
    "json": "JSON",
    "parquet": "Parquet",
}


def add_parser(sub: Any) -> None:
    sql = sub.add_parser("sql", help="run a read-only SQL query against a running server")
    sql.add_argument("query", help="one SELECT (or DESCRIBE, SHOW) statement")
    sql.add_argument("--format", choices=sorted(FORMATS), default="table")
    sql.add_argument("--out", type=Path, default=None, help="write the answer here (parquet)")
    sql.add_argument("--url", default=None)
    sql.add_argument(
        "--database", default=None, help="for unqualified tables (default: the analytics views)"
    )


def run(args: argparse.Namespace) -> int:
    key = (os.environ.get("CODETRACKR_SQL_KEY") or os.environ.get(admin_cli.KEY_ENV, "")).strip()
    if not key:
        print(
            "set CODETRACKR_SQL_KEY to an API key of an analyst or admin account", file=sys.stderr
        )
        return 2
    url = (
        args.url
        or os.environ.get("CODETRACKR_SQL_URL")
        or os.environ.get(admin_cli.URL_ENV)
        or admin_cli.DEFAULT_URL
    )
    params = {"default_format": FORMATS[args.format]}
    if args.database:
        params["database"] = args.database
    response = httpx.post(
        f"{url.rstrip('/')}/clickhouse/",
        content=args.query.encode(),
        params=params,
        headers={"X-API-Key": key},
        timeout=120.0,
    )
    if response.status_code != 200:
        print(response.text.strip(), file=sys.stderr)
        return 1
    if args.out is not None:
        args.out.write_bytes(response.content)
        print(f"wrote {len(response.content):,} bytes to {args.out}")
    elif args.format == "parquet":
        print("parquet is binary: use --out FILE", file=sys.stderr)
        return 2
    else:
        sys.stdout.write(response.text)
    return 0
