"""``python -m bench [--mode embedded|kafka|distributed|all]``: run the figures, print the table,
write JSON."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import uvloop

from bench.ai_search import figure_ai_search
from bench.clients import Sentinels, create_users
from bench.day_fold import figure_day_fold
from bench.deploy import MODES, Deployment, Mode, User, machine_busy_cpu_s, own_cpu_s
from bench.freshness import figure_freshness, users_needed
from bench.goals import figure_goals
from bench.ingest import figure_ingest
from bench.leaderboard import figure_leaderboard
from bench.live_push import figure_live_push
from bench.live_push import users_needed as live_users_needed
from bench.load import LOAD_USERS, figure_freshness_under_load, probe_users_needed
from bench.metrics_cost import figure_metrics_cost
from bench.plugin_hooks import figure_plugin_hooks
from bench.plugin_sandbox import figure_plugin_sandbox
from bench.replay import figure_replay
from bench.report import Row, machine, render_machine, render_table, write_json
from bench.stats_load import figure_stats
from bench.topology import BROKER_LABELS, BROKERS, WORKERS, BrokerKind, DistributedDeployment
from bench.wakatime_import import figure_wakatime_import

SCALE_ENV = "CODETRACKR_BENCH_SCALE"
INGEST_CLIENTS = 16
DEFAULT_OUT = Path("bench-out/results.json")
FIGURES = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12")


def _scale() -> float:
    raw = os.environ.get(SCALE_ENV, "1.0")
    try:
        scale = float(raw)
    except ValueError:
        raise SystemExit(f"{SCALE_ENV} must be a number, got {raw!r}") from None
    if not 0 < scale <= 100:
        raise SystemExit(f"{SCALE_ENV} must be in (0, 100], got {scale}")
    return scale


_interrupted = False


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGINT and SIGTERM: leave through every context manager, which stops the processes.

    Installed for both signals, so asyncio does not install its own SIGINT handler (which only
    cancels the running figure, and a figure failing because Ctrl-C also reached the server
    would then look like an ordinary failure). The flag stops the run even then. Signals after
    the first are ignored, so a second Ctrl-C cannot cut the (bounded) shutdown short.
    """
    global _interrupted
    if _interrupted:
        return
    _interrupted = True
    raise KeyboardInterrupt(f"signal {signum}")


def _check_interrupted() -> None:
    if _interrupted:
        raise KeyboardInterrupt


def _wait_quiet(max_s: float) -> None:
    """Wait up to ``max_s`` until other processes use under 20% of one core (over 3 s windows).

    The machine may be shared; the figures carry the CPU other processes used anyway.
    """
    deadline = time.monotonic() + max_s
    logged = 0.0
    while time.monotonic() < deadline:
        busy, own, began = machine_busy_cpu_s(), own_cpu_s(), time.perf_counter()
        time.sleep(3.0)
        others = (machine_busy_cpu_s() - busy - (own_cpu_s() - own)) / (time.perf_counter() - began)
        if others < 0.2:
            return
        if time.monotonic() - logged > 30:
            logged = time.monotonic()
            _log(f"waiting for a quieter machine: other processes use {others:.0%} of a core")
    _log(f"machine still busy after {max_s:.0f} s; measuring anyway")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


Figure = tuple[str, Callable[[], Coroutine[Any, Any, list[Row]]]]
# Accounts for a figure: ``users("2", 5)`` makes five if figure 2 runs, else none.
Users = Callable[[str, int], list[User]]


def _serve_figures(
    deployment: Deployment, users: Users, scale: float, clients: int, work_dir: Path
) -> list[Figure]:
    """embedded and kafka: one ``codetrackr serve``."""
    ingest_users = users("1", clients)
    fresh_users = users("2", users_needed(scale))
    big_and_small = users("3", 2)
    embedded = deployment.mode == "embedded"
    live_users = users("4", live_users_needed(scale)) if embedded else []
    importers = users("12", 2) if embedded else []
    sentinels = Sentinels(deployment.url, deployment.url)
    figures: list[Figure] = [
        (
            "1 bulk ingest vs raw append",
            lambda: figure_ingest(deployment, ingest_users, sentinels, scale),
        ),
        ("2 freshness", lambda: figure_freshness(deployment, fresh_users, scale)),
        (
            "3 stats latency, big vs small user",
            lambda: figure_stats(deployment, big_and_small[0], big_and_small[1], scale),
        ),
    ]
    if embedded:
        figures += [
            ("4 heartbeat to WebSocket", lambda: figure_live_push(deployment, live_users, scale)),
            (
                "5 leaderboards with 100k ranked users",
                # Its own server, on a seeded log (see bench.leaderboard).
                lambda: figure_leaderboard(work_dir / "leaderboard", scale),
            ),
            # In-process, no server: once per bench run is enough.
            ("6 plugin execution", lambda: figure_plugin_sandbox(scale)),
            ("7 plugin hooks beside projections", lambda: figure_plugin_hooks(scale)),
            # In-process too: the goal rules over a user-year of rows.
            ("8 goals over a user-year", lambda: figure_goals(scale)),
            ("9 conversation search", lambda: figure_ai_search(scale)),
            ("10 one heartbeat into a full day", lambda: figure_day_fold(scale)),
            ("11 what /metrics costs a request", lambda: figure_metrics_cost(scale)),
            (
                "12 WakaTime export import in constant memory",
                lambda: figure_wakatime_import(
                    deployment, importers, scale, work_dir / "wakatime", deployment.server_pid
                ),
            ),
        ]
    return figures


def _distributed_figures(
    system: DistributedDeployment, users: Users, scale: float, clients: int
) -> list[Figure]:
    """distributed: broker, ClickHouse over HTTP, ingest, api and workers."""
    ingest_users = users("1", clients)
    probe_users = users("2", probe_users_needed(scale))
    load_users = users("2", LOAD_USERS)
    import_users = users("3", 1)
    sentinels = Sentinels(system.ingest_url, system.api_url)
    return [
        (
            "1 bulk ingest vs raw append",
            lambda: figure_ingest(system, ingest_users, sentinels, scale),
        ),
        (
            "2 freshness at a sustained 1k hb/s",
            lambda: figure_freshness_under_load(system, probe_users, load_users, sentinels, scale),
        ),
        (
            "3 replay vs raw ClickHouse insert",
            lambda: figure_replay(system, import_users[0], scale),
        ),
    ]


def _deployment(
    mode: Mode, work_dir: Path, broker: BrokerKind
) -> Deployment | DistributedDeployment:
    if mode == "distributed":
        return DistributedDeployment(work_dir, broker)
    return Deployment(mode, work_dir)


def _describe(mode: Mode, broker: BrokerKind) -> str:
    if mode == "embedded":
        return "codetrackr serve"
    if mode == "kafka":
        return "noida-db broker and codetrackr serve"
    return (
        f"{BROKER_LABELS[broker]} broker, the ClickHouse HTTP stand-in, codetrackr api, "
        f"ingest and {WORKERS} workers"
    )


def run_mode(
    mode: Mode,
    work_dir: Path,
    scale: float,
    clients: int,
    errors: dict[str, str],
    only: frozenset[str] = frozenset(FIGURES),
    broker: BrokerKind = "tansu",
) -> list[Row]:
    """The figures of one mode; a failed figure is recorded in ``errors`` and skipped."""
    rows: list[Row] = []
    _log(f"{mode}: starting {_describe(mode, broker)}")
    with (
        _deployment(mode, work_dir, broker) as system,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        _log(f"{mode}: ingest on {system.ingest_url}, api on {system.api_url}; creating accounts")

        def users(figure: str, count: int) -> list[User]:
            if figure not in only:
                return []
            return runner.run(create_users(system.api_url, count))

        if isinstance(system, DistributedDeployment):
            figures = _distributed_figures(system, users, scale, clients)
        else:
            figures = _serve_figures(system, users, scale, clients, work_dir)
        for name, figure in figures:
            if name.split()[0] not in only:
                continue
            dead = system.dead()
            if dead:
                errors[f"{mode}: figure {name}"] = f"skipped: {', '.join(dead)} not running"
                continue
            _log(f"{mode}: figure {name}")
            try:
                rows += runner.run(figure())
            except Exception as exc:  # the next figure may still be measurable
                _check_interrupted()
                errors[f"{mode}: figure {name}"] = f"{type(exc).__name__}: {exc}"
                _log(f"{mode}: figure {name} FAILED:\n{traceback.format_exc()}")
        dead = system.dead()
        if dead:
            errors[f"{mode}: processes"] = f"{', '.join(dead)} died; log tail:\n{system.logs()}"
    return rows


def _payload(
    info: dict[str, Any],
    scale: float,
    modes: Sequence[Mode],
    broker: BrokerKind,
    rows: Sequence[Row],
    errors: dict[str, str],
    started: datetime,
    elapsed_s: float,
) -> dict[str, Any]:
    return {
        "machine": info,
        "scale": scale,
        "modes": list(modes),
        "distributed_broker": broker if "distributed" in modes else None,
        "ingest_clients": INGEST_CLIENTS,
        "started_at": started.isoformat(),
        "elapsed_s": round(elapsed_s, 1),
        "rows": [row.as_json() for row in rows],
        "errors": errors,
    }


def _modes(modes: Sequence[Mode], broker: BrokerKind) -> str:
    return ", ".join(
        f"{mode} (broker: {BROKER_LABELS[broker]})" if mode == "distributed" else mode
        for mode in modes
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--mode", choices=[*MODES, "all"], default="all")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument(
        "--broker",
        choices=BROKERS,
        default="tansu",
        help="the Kafka-protocol broker of the distributed mode (default: tansu)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (data, logs)")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each mode, wait up to SECONDS for other processes to go quiet",
    )
    parser.add_argument(
        "--only",
        default=",".join(FIGURES),
        help="comma-separated figure numbers to run (default: all; 4 to 8: embedded mode only)",
    )
    args = parser.parse_args(argv)
    scale = _scale()
    only = frozenset(part.strip() for part in args.only.split(",") if part.strip())
    if not only or not only <= set(FIGURES):
        parser.error(f"--only takes figure numbers among {', '.join(FIGURES)}")
    modes: list[Mode] = [mode for mode in MODES if args.mode in (mode, "all")]
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)

    info = machine()
    started, began = datetime.now(UTC), time.perf_counter()
    print(render_machine(info), flush=True)
    print(f"scale {scale}, modes {_modes(modes, args.broker)}, {INGEST_CLIENTS} ingest clients")
    work = Path(tempfile.mkdtemp(prefix="codetrackr-bench-"))
    rows: list[Row] = []
    errors: dict[str, str] = {}
    try:
        for mode in modes:
            if args.wait_quiet > 0:
                _wait_quiet(args.wait_quiet)
            try:
                rows += run_mode(
                    mode, work / mode, scale, INGEST_CLIENTS, errors, only, args.broker
                )
            except Exception as exc:  # one mode failing must not hide the other's figures
                _check_interrupted()
                errors[mode] = f"{type(exc).__name__}: {exc}"
                _log(f"{mode} FAILED:\n{traceback.format_exc()}")
            write_json(
                args.out,
                _payload(
                    info,
                    scale,
                    modes,
                    args.broker,
                    rows,
                    errors,
                    started,
                    time.perf_counter() - began,
                ),
            )
    except KeyboardInterrupt:
        _log("interrupted; child processes stopped")
        return 130
    finally:
        if args.keep:
            _log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    elapsed = time.perf_counter() - began
    print()
    print(render_machine(info))
    print(
        f"scale {scale}, modes {_modes(modes, args.broker)}, "
        f"total bench time {elapsed / 60:.1f} min"
    )
    print()
    print(render_table(rows))
    for failed, error in errors.items():
        print(f"\n{failed} FAILED: {error}")
    write_json(args.out, _payload(info, scale, modes, args.broker, rows, errors, started, elapsed))
    print(f"\nJSON: {args.out}")
    return 1 if errors else 0
