"""The provisioned Grafana dashboards (``deploy/grafana``), read the way Grafana reads them.

:func:`expand` turns a panel's SQL into what the ClickHouse data source sends: it replaces the
data source's macros the way the plugin documents them (``$__timeFilter(col)`` becomes
``col >= toDateTime(<from>) AND col <= toDateTime(<to>)``, and so on) for a given time range and
interval. A macro it does not know fails the test, so a panel cannot use one nobody checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
CLICKHOUSE_TYPE = "grafana-clickhouse-datasource"
PROMETHEUS_TYPE = "prometheus"


@dataclass(frozen=True)
class Target:
    dashboard: str
    panel: str
    datasource: dict[str, str]
    body: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.dashboard}: {self.panel} ({self.body['refId']})"


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def targets(kind: str) -> Iterator[Target]:
    """Every query of every panel whose data source has type ``kind``."""
    for name, board in dashboards().items():
        for panel in board["panels"]:
            for target in panel["targets"]:
                source = target.get("datasource") or panel["datasource"]
                if source["type"] == kind:
                    yield Target(name, panel["title"], source, target)


def _args(text: str) -> list[str]:
    return [part.strip() for part in text.split(",")] if text.strip() else []


def expand(sql: str, start: datetime, end: datetime, interval_s: int = 60) -> str:
    """``sql`` with the ClickHouse data source's macros replaced for ``[start, end]``."""

    def dt(moment: datetime) -> str:
        return f"toDateTime({int(moment.timestamp())})"

    def dt64(moment: datetime) -> str:
        return f"fromUnixTimestamp64Milli({int(moment.timestamp() * 1000)})"

    def date(moment: datetime) -> str:
        return f"toDate('{moment.date().isoformat()}')"

    def between(column: str, low: str, high: str) -> str:
        return f"{column} >= {low} AND {column} <= {high}"

    with_args = {
        "timeFilter": lambda c: between(c, dt(start), dt(end)),
        "timeFilter_ms": lambda c: between(c, dt64(start), dt64(end)),
        "dateFilter": lambda c: between(c, date(start), date(end)),
        "timeInterval": lambda c: (
            f"toStartOfInterval(toDateTime({c}), INTERVAL {max(interval_s, 1)} second)"
        ),
    }
    bare = {
        "fromTime": dt(start),
        "toTime": dt(end),
        "fromTime_ms": dt64(start),
        "toTime_ms": dt64(end),
        "interval_s": str(max(interval_s, 1)),
    }

    def call(match: re.Match[str]) -> str:
        name, args = match.group(1), _args(match.group(2))
        if name not in with_args:
            raise AssertionError(f"macro $__{name}(...) is not one the tests know")
        assert len(args) == 1, f"$__{name} takes one argument, got {args}"
        return with_args[name](args[0])

    expanded = re.sub(r"\$__(\w+)\(([^()]*)\)", call, sql)

    def plain(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in bare:
            raise AssertionError(f"macro $__{name} is not one the tests know")
        return bare[name]

    expanded = re.sub(r"\$__(\w+)", plain, expanded)
    assert "$" not in expanded, f"an unexpanded variable is left in {expanded}"
    return expanded


PROMQL_METRIC = re.compile(r"\b(codetrackr_[a-z0-9_]+)\b")
PROMQL_BY = re.compile(r"\bby\s*\(([^)]*)\)")
