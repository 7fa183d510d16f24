"""Figure 10: projecting one heartbeat into a day that already holds 20,000, against one into an
empty day.

Value: p50 of ``HeartbeatProjector.handle`` of one request holding one heartbeat, 2 s after the
last of a day that holds ``20,000 × scale`` heartbeats (a chatty AI assistant: one every 2 s
from 08:00, forty files of two projects, category ``ai coding``). Baseline, interleaved: the same
call for one heartbeat into an empty day (a user's next day each sample). Both go through the
real projector and ClickHouse store (chdb), with every write of the batch (archive, day row, day
fold, week row). The notes add p99s and a *late* heartbeat into the big day (one that sorts
before the day's last, so the day is folded again from the archive: the cost every heartbeat
paid before day folds).

chdb allows one data directory per process, so the measurement runs in a child process
(``python -m bench.day_fold``) with its own.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.child import run_child
from bench.report import Row, percentile
from schemas.events import HeartbeatsReceived
from schemas.heartbeat import Heartbeat, heartbeat_event_id

HEARTBEATS_AT_SCALE_1 = 20_000
SAMPLES_AT_SCALE_1 = 200
LATE_SAMPLES = 10
_DAY_START = datetime(2026, 11, 2, 8, tzinfo=UTC).timestamp()  # a Monday, 08:00 UTC
_STEP_S = 2.0
_LOAD_BATCH = 500  # a full request


def _heartbeat(user: str, time_s: float, n: int) -> Heartbeat:
    fields = {
        "user_id": user,
        "entity": f"/src/{'api' if n % 2 else 'web'}/module_{n % 40}.py",
        "type": "file",
        "category": "ai coding",
        "project": "api" if n % 2 else "web",
        "branch": "main",
        "language": "Python",
        "is_write": n % 5 == 0,
        "time": time_s,
    }
    return Heartbeat(
        event_id=heartbeat_event_id(**fields),  # type: ignore[arg-type]
        received_at=time_s + 0.5,
        timezone="UTC",
        editor="Claude Code",
        os="Linux",
        machine="laptop",
        source="codetrackr",
        **fields,  # type: ignore[arg-type]
    )


def _request(user: str, beats: list[Heartbeat], n: int) -> HeartbeatsReceived:
    return HeartbeatsReceived(
        event_id=f"req-{user}-{n}", user_id=user, occurred_at=time.time(), heartbeats=tuple(beats)
    )


def _measure(url: str, heartbeats: int, samples: int) -> dict[str, Any]:
    # The engine is loaded in the child only (one chdb data directory per process).
    from processors.handlers import HeartbeatProjector
    from projections.clickhouse import ClickHouseProjectionStore

    store = ClickHouseProjectionStore(url, database=f"bench_{uuid.uuid4().hex[:8]}")
    store.migrate()
    projector = HeartbeatProjector(store, today=lambda: datetime(2026, 11, 2, tzinfo=UTC).date())
    big, small = "big-day", "empty-days"
    started = time.perf_counter()
    for first in range(0, heartbeats, _LOAD_BATCH):
        beats = [
            _heartbeat(big, _DAY_START + n * _STEP_S, n)
            for n in range(first, min(heartbeats, first + _LOAD_BATCH))
        ]
        projector.handle([_request(big, beats, first)])
    loaded = time.perf_counter() - started

    def timed(user: str, beat: Heartbeat, n: int) -> float:
        request = _request(user, [beat], n)
        began = time.perf_counter()
        projector.handle([request])
        return time.perf_counter() - began

    full: list[float] = []
    empty: list[float] = []
    warmup = 5
    for index in range(samples + warmup):
        n = heartbeats + index
        into_full = timed(big, _heartbeat(big, _DAY_START + n * _STEP_S, n), n)
        # Each sample's own empty day: the next day of the small user.
        day_start = _DAY_START + (index + 1) * 86400
        into_empty = timed(small, _heartbeat(small, day_start, index), index)
        if index >= warmup:
            full.append(into_full)
            empty.append(into_empty)
    late: list[float] = []
    for index in range(LATE_SAMPLES):  # sorts before the day's last: folded again
        t = _DAY_START + (index + 0.5) * _STEP_S
        late.append(timed(big, _heartbeat(big, t, 10_000_000 + index), 10_000_000 + index))
    day = datetime.fromtimestamp(_DAY_START, UTC).date()
    row = store.daily_rows(big, day, day)[0]
    store.close()
    return {
        "full": full,
        "empty": empty,
        "late": late,
        "load_s": loaded,
        "day_heartbeats": row.heartbeat_count,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--heartbeats", type=int, required=True)
    parser.add_argument("--samples", type=int, default=SAMPLES_AT_SCALE_1)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    result = _measure(f"chdb://{args.dir}", args.heartbeats, args.samples)
    print(json.dumps(result))


async def figure_day_fold(scale: float) -> list[Row]:
    heartbeats = max(2_000, round(HEARTBEATS_AT_SCALE_1 * scale))
    samples = max(30, round(SAMPLES_AT_SCALE_1 * scale))
    result = await run_child(
        "bench.day_fold",
        ["--heartbeats", str(heartbeats), "--samples", str(samples)],
        what="day fold",
        dir_name="clickhouse",
    )
    return [rows_of(result, heartbeats)]


def rows_of(result: dict[str, Any], heartbeats: int) -> Row:
    full, empty, late = (list(map(float, result[k])) for k in ("full", "empty", "late"))
    return Row(
        mode="embedded",
        figure=f"10 one heartbeat projected into a day holding {heartbeats:,}, p50",
        unit="s",
        value=percentile(full, 50),
        baseline=percentile(empty, 50),
        baseline_label="one heartbeat into an empty day, interleaved, p50",
        notes=[
            f"full day p99 {percentile(full, 99) * 1e3:.1f} ms, empty day p99 "
            f"{percentile(empty, 99) * 1e3:.1f} ms, {len(full)} samples each; the day held "
            f"{result['day_heartbeats']:,} heartbeats at the end; a late heartbeat into it "
            f"(folds the day again) p50 {percentile(late, 50) * 1e3:.0f} ms over {len(late)}; "
            f"loading the day took {float(result['load_s']):.0f} s",
        ],
    )


if __name__ == "__main__":
    main()
