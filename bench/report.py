"""Result rows, percentiles, the machine description, and the table / JSON renderings."""

from __future__ import annotations

import json
import math
import os
import platform
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation (numpy's default method)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Row:
    """One figure next to its baseline. ``ratio`` is ``value / baseline``."""

    mode: str
    figure: str
    unit: str
    value: float | None
    baseline: float | None
    baseline_label: str
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ratio"] = self.ratio
        return out


def _fmt(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if unit == "s":
        if value < 1.0:
            return f"{value * 1000:.1f} ms"
        return f"{value:.2f} s"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:,.2f} {unit}"


def _fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "n/a"
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    if ratio >= 0.1:
        return f"{ratio:.2f}x"
    return f"{ratio:.3f}x"


def render_table(rows: Sequence[Row]) -> str:
    """``mode | figure | value | baseline | ratio`` as aligned plain text, notes underneath."""
    header = ("#", "mode", "figure", "value", "baseline", "ratio")
    cells = [
        (
            str(i),
            row.mode,
            row.figure,
            _fmt(row.value, row.unit),
            f"{_fmt(row.baseline, row.unit)} ({row.baseline_label})",
            _fmt_ratio(row.ratio),
        )
        for i, row in enumerate(rows, 1)
    ]
    widths = [max(len(line[col]) for line in [header, *cells]) for col in range(len(header))]

    def line(values: Sequence[str]) -> str:
        return " | ".join(value.ljust(width) for value, width in zip(values, widths, strict=True))

    out = [line(header), "-+-".join("-" * width for width in widths)]
    out += [line(cell) for cell in cells]
    notes = [f"  [{i}] {note}" for i, row in enumerate(rows, 1) for note in row.notes]
    if notes:
        out += ["", "notes:", *notes]
    return "\n".join(out)


def machine() -> dict[str, Any]:
    """Cores, RAM, Python and the CPU model, from /proc where Linux provides it."""
    cpu_model = platform.processor() or "unknown"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
        if match:
            cpu_model = match.group(1).strip()
    except OSError:
        pass
    ram_gib: float | None = None
    try:
        meminfo = Path("/proc/meminfo").read_text()
        match = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.MULTILINE)
        if match:
            ram_gib = round(int(match.group(1)) / 1024 / 1024, 1)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_gib": ram_gib,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def render_machine(info: dict[str, Any]) -> str:
    return (
        f"machine: {info['cpu_model']}, {info['cores']} cores ({info['usable_cores']} usable), "
        f"{info['ram_gib']} GiB RAM, {info['implementation']} {info['python']}, "
        f"{info['platform']}; load average at start "
        f"{' '.join(str(v) for v in info['load_average_at_start'])}"
    )


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    tmp.replace(path)
