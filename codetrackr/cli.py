"""``codetrackr`` command line: serve, ingest, api, worker (the roles); replay, dlq, backup,
restore (the embedded log); admin, sql (clients of a running server); claude-hook; import
(Claude Code's and Codex's session logs, a client of a running server)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codetrackr import admin_cli, sql_cli
from codetrackr.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def _serve(args: argparse.Namespace, role: str) -> int:
    import uvicorn

    from codetrackr.bootstrap import create_app
    from http_edge.header_limits import bounded_http_protocol

    settings = _settings(args)
    app = create_app(settings, role)  # type: ignore[arg-type]
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=15,
        # httptools bounds no request head: this protocol caps its bytes and fields (431).
        http=bounded_http_protocol(settings.max_header_bytes, settings.max_header_fields),
        # On every response, the server's own (400, 431, 500) included: browsers must never
        # guess a JSON answer or an SVG badge into something executable.
        headers=[("X-Content-Type-Options", "nosniff")],
        # The client address is the socket peer unless CODETRACKR_TRUSTED_PROXIES says otherwise
        # (http_edge/client_ip.py); uvicorn would otherwise take X-Forwarded-For from any
        # loopback peer.
        proxy_headers=False,
    )
    return 0


def _hooks_worker(settings: Settings) -> int:
    """``codetrackr worker --role hooks``: the plugin hook processor alone (no projection agents),
    with its own /healthz, /readyz and /metrics; stops on SIGTERM or Ctrl-C."""
    import signal

    from accounts.directory import AccountDirectory
    from codetrackr.bootstrap import build_event_log, prepare_log, supervision_policy
    from codetrackr.health import Readiness, serve_worker_health
    from codetrackr.hooks import build_hooks, hooks_running
    from codetrackr.metrics import Metrics
    from live.factory import open_live_channel

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        log = build_event_log(settings)
        await prepare_log(log, settings)
        directory = AccountDirectory(log, shared_log=True)
        live = open_live_channel(settings.redis_url) if settings.redis_url else None
        readiness = Readiness(
            "worker", log, expects_projector=True, timeout_s=settings.readiness_timeout_s
        )
        metrics = Metrics("worker")
        metrics.sources.projectors = readiness.projectors
        health = None
        try:
            if live is not None:
                await live.start()
            await directory.start()
            health = await serve_worker_health(
                readiness, settings.host, settings.port, metrics.render
            )
            hooks = build_hooks(settings, log, directory, live, supervision_policy(settings))
            async with hooks_running(hooks, readiness, metrics=metrics):
                await stop.wait()
            return 0
        finally:
            if health is not None:
                await health.cleanup()
            await directory.close()
            if live is not None:
                await live.close()
            await log.close()

    return asyncio.run(run())


def _worker(args: argparse.Namespace) -> int:
    from faust import Worker

    from accounts.directory import AccountDirectory
    from codetrackr.bootstrap import (
        build_event_log,
        build_store,
        goal_owners,
        prepare_log,
        private_dir,
        supervision_policy,
    )
    from codetrackr.health import Readiness, serve_worker_health
    from codetrackr.hooks import build_hooks, hooks_running
    from codetrackr.metrics import Metrics
    from eventlog.port import LogError
    from live.factory import open_live_channel
    from live.port import LivePublisher
    from processors.deadletters import DeadLetterWriter
    from processors.faust_worker import build_faust_app
    from processors.handlers import HeartbeatProjector
    from processors.projectors.goals import GoalOwner, GoalWatch

    settings = _settings(args)
    private_dir(settings.data_dir)
    if not settings.event_log_url.startswith("kafka://"):
        print("codetrackr worker needs CODETRACKR_EVENT_LOG_URL=kafka://host:port", file=sys.stderr)
        return 2
    if args.role == "hooks":
        return _hooks_worker(settings)
    with_hooks = args.role == "all"

    async def prepare() -> None:
        log = build_event_log(settings)
        await prepare_log(log, settings)
        await log.close()

    asyncio.run(prepare())
    store = build_store(settings)
    store.migrate()

    # Workers publish live updates only through Redis: nobody subscribes inside a worker.
    live = open_live_channel(settings.redis_url) if settings.redis_url else None
    # Live goals read goals and timezones from the account directory the plugin hooks fold
    # (below), once it has started; until then no goal is checked.
    folded: list[AccountDirectory] = []

    def goal_owner(user_id: str) -> GoalOwner | None:
        return goal_owners(folded[0])(user_id) if folded else None

    goal_watch = (
        GoalWatch(LivePublisher(live), goal_owner, store.daily_rows).start()
        if live is not None
        else None
    )
    # Dead letters and the readiness checks go through the event log port (its producer starts
    # on first use, on faust's loop).
    log = build_event_log(settings)
    app = build_faust_app(
        bootstrap=settings.event_log_url.removeprefix("kafka://"),
        projector_factory=lambda: HeartbeatProjector(
            store,
            publisher=LivePublisher(live),
            subscribers=[goal_watch] if goal_watch is not None else [],
        ),
        live=live,
        partitions=settings.heartbeat_partitions,
        batch_size=settings.worker_batch_size,
        data_dir=str(settings.data_dir / "faust"),
        policy=supervision_policy(settings),
        dead_letter=DeadLetterWriter(log),
    )
    readiness = Readiness(
        "worker",
        log,
        store_ping=store.table_names,
        projectors=list(app.probes),
        expects_projector=True,
        timeout_s=settings.readiness_timeout_s,
    )
    metrics = Metrics("worker")
    metrics.sources.projectors = readiness.projectors

    async def serve_health() -> None:
        try:
            runner = await serve_worker_health(
                readiness, settings.host, settings.port, metrics.render
            )
        except OSError as exc:
            logging.getLogger("codetrackr.worker").error(
                "health endpoint not served on %s:%s: %s", settings.host, settings.port, exc
            )
        else:
            app.stop_hooks.append(runner.cleanup)

    # Plugin hooks beside the agents (unless --role projections): their own consumer group, account
    # directory and log client. The directory is folded in either role: live goals read it.
    hooks_stopped = asyncio.Event()
    hooks_logger = logging.getLogger("codetrackr.worker.hooks")

    async def run_hooks() -> None:
        # Never raises: a faust task that raises stops the whole worker, projections included.
        hooks_log = build_event_log(settings)
        directory: AccountDirectory | None = None
        try:
            await hooks_log.start()
            attempt = 0
            while directory is None and not hooks_stopped.is_set():
                candidate = AccountDirectory(hooks_log, shared_log=True)
                try:
                    await candidate.start()
                    directory = candidate
                    folded.append(directory)
                except LogError as exc:
                    await candidate.close()
                    attempt += 1
                    hooks_logger.warning("plugin hooks wait for the accounts topic: %s", exc)
                    await asyncio.sleep(min(2.0 * attempt, 30.0))
            if directory is not None and not with_hooks:
                await hooks_stopped.wait()
            elif directory is not None:
                hooks = build_hooks(
                    settings, hooks_log, directory, live, supervision_policy(settings)
                )
                async with hooks_running(hooks, readiness, metrics=metrics):
                    await hooks_stopped.wait()
        except Exception:
            hooks_logger.exception("plugin hooks stopped in this worker")
        finally:
            folded.clear()
            if directory is not None:
                await directory.close()
            await hooks_log.close()

    async def stop_hooks() -> None:
        hooks_stopped.set()
        if goal_watch is not None:
            await asyncio.to_thread(goal_watch.close)

    app.stop_hooks.append(log.close)
    app.stop_hooks.append(stop_hooks)
    app.task(serve_health)
    app.task(run_hooks)
    worker = Worker(app, loglevel=settings.log_level.upper(), quiet=True)
    worker.execute_from_commandline()
    return 0


def _replay(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from codetrackr.bootstrap import build_event_log, build_store, prepare_log, private_dir
    from processors.handlers import HeartbeatProjector
    from processors.replay import replay

    settings = _settings(args)
    private_dir(settings.data_dir)
    store = build_store(settings)
    store.migrate()

    async def run() -> int:
        log = build_event_log(settings)
        await prepare_log(log, settings)
        bar = tqdm(total=0, unit="rec", desc="replay", disable=args.quiet)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            return await replay(
                log, HeartbeatProjector(store), store.truncate_projections, progress=progress
            )
        finally:
            bar.close()
            await log.close()

    try:
        done = asyncio.run(run())
    finally:
        store.close()
    print(f"replayed {done} records into {settings.clickhouse_database}")
    return 0


def _embedded_only(settings: Settings, command: str) -> str | None:
    if settings.event_log_url != "embedded://":
        return (
            f"codetrackr {command} handles the embedded log in the data directory; with "
            f"CODETRACKR_EVENT_LOG_URL={settings.event_log_url} see docs/operations.md#backups"
        )
    return None


def _backup(args: argparse.Namespace) -> int:
    from codetrackr.backup import BackupError, backup

    settings = _settings(args)
    if (refused := _embedded_only(settings, "backup")) is not None:
        print(refused, file=sys.stderr)
        return 2
    try:
        manifest = backup(settings.data_dir, args.target)
    except BackupError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    records = ", ".join(f"{topic} {n:,}" for topic, n in sorted(manifest["records"].items()))
    print(f"backed up {settings.data_dir} into {args.target}: {records} records")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from codetrackr.backup import BackupError, restore

    settings = _settings(args)
    if (refused := _embedded_only(settings, "restore")) is not None:
        print(refused, file=sys.stderr)
        return 2
    try:
        restore(args.source, settings.data_dir)
    except BackupError as exc:
        print(f"restore failed: {exc}", file=sys.stderr)
        return 1
    print(f"restored {args.source} into {settings.data_dir}")
    if args.no_replay:
        print("projections not rebuilt: run codetrackr replay before serving")
        return 0
    return _replay(args)


def _dlq(args: argparse.Namespace) -> int:
    from codetrackr.bootstrap import build_event_log, prepare_log
    from processors.deadletters import list_pending, redrive

    settings = _settings(args)

    async def run() -> int:
        log = build_event_log(settings)
        await prepare_log(log, settings)
        try:
            if args.dlq_command == "list":
                for letter_id, letter in await list_pending(log):
                    print(
                        json.dumps(
                            {
                                "id": letter_id,
                                "topic": letter.topic,
                                "partition": letter.partition,
                                "offset": letter.offset,
                                "key": letter.key.decode(errors="replace"),
                                "error": letter.error,
                                "attempts": letter.attempts,
                                "failed_at": letter.failed_at,
                                "payload_bytes": len(letter.payload),
                                **(
                                    {"payload": letter.payload.decode(errors="replace")}
                                    if args.payload
                                    else {}
                                ),
                            }
                        )
                    )
                return 0
            ids = None if args.all else args.ids
            if not ids and not args.all:
                print(
                    "name the dead letters to replay (ids from `dlq list`) or --all",
                    file=sys.stderr,
                )
                return 2
            done = await redrive(log, ids)
            for letter_id in done:
                print(f"re-driven dead letter {letter_id}")
            missing = sorted(set(ids or ()) - set(done))
            if missing:
                print(f"not pending (unknown or already re-driven): {missing}", file=sys.stderr)
                return 1
            return 0
        finally:
            await log.close()

    return asyncio.run(run())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codetrackr", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_server_flags(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
        p.add_argument("--port", type=int, default=None, help="listen port (default 8000)")
        p.add_argument("--data-dir", type=Path, default=None, help="data directory (./data)")
        return p

    with_server_flags(sub.add_parser("serve", help="everything in one process (embedded)"))
    with_server_flags(sub.add_parser("ingest", help="the ingest service (write endpoints)"))
    with_server_flags(sub.add_parser("api", help="the read API and accounts service"))
    worker = with_server_flags(
        sub.add_parser(
            "worker",
            help="a faust projection worker (distributed mode); serves /healthz and /readyz",
        )
    )
    worker.add_argument(
        "--role",
        choices=("all", "projections", "hooks"),
        default="all",
        help="what this worker runs: projections and plugin hooks (all, the default), the"
        " projection agents only, or the plugin hook processor only (docs/operations.md)",
    )
    rep = sub.add_parser("replay", help="rebuild every projection from the log")
    rep.add_argument("--data-dir", type=Path, default=None)
    rep.add_argument("--quiet", action="store_true", help="no progress bar")
    dlq = sub.add_parser("dlq", help="inspect and re-drive dead letters (docs/operations.md)")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_list = dlq_sub.add_parser("list", help="pending dead letters, one JSON object a line")
    dlq_list.add_argument("--data-dir", type=Path, default=None)
    dlq_list.add_argument("--payload", action="store_true", help="include each payload")
    dlq_replay = dlq_sub.add_parser(
        "replay", help="append dead letters back to their topic, once each"
    )
    dlq_replay.add_argument("--data-dir", type=Path, default=None)
    dlq_replay.add_argument("ids", type=int, nargs="*", help="dead letter ids (`dlq list`)")
    dlq_replay.add_argument("--all", action="store_true", help="every pending dead letter")
    back = sub.add_parser(
        "backup", help="an online, consistent backup of the embedded log and plugin data"
    )
    back.add_argument("--data-dir", type=Path, default=None)
    back.add_argument("target", type=Path, help="a new directory to write the backup into")
    rest = sub.add_parser(
        "restore", help="restore a backup into a new data directory, then rebuild projections"
    )
    rest.add_argument("--data-dir", type=Path, default=None)
    rest.add_argument("source", type=Path, help="the backup directory")
    rest.add_argument("--no-replay", action="store_true", help="do not rebuild projections")
    rest.add_argument("--quiet", action="store_true", help="no progress bar")
    admin_cli.add_parser(sub)
    sql_cli.add_parser(sub)
    hook = sub.add_parser(
        "claude-hook",
        help="report Claude Code's hook events (its JSON on stdin) to CodeTrackr (docs/ai.md)",
    )
    from codetrackr.claude_hook import add_arguments

    add_arguments(hook)
    from codetrackr import ai_import

    ai_import.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "claude-hook":  # a client: no server logging, never a failure
        from codetrackr.claude_hook import main as claude_hook

        return claude_hook(args)
    if args.command == "import":  # a client of a running server, like claude-hook
        from codetrackr import ai_import

        return ai_import.run(args)
    # Everything this process writes (log, projections, faust state, secrets) is its owner's
    # alone; the composition root also tightens directories an older version left open.
    os.umask(0o077)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command in ("serve", "ingest", "api"):
        return _serve(args, args.command)
    if args.command == "worker":
        return _worker(args)
    if args.command == "dlq":
        return _dlq(args)
    if args.command == "backup":
        return _backup(args)
    if args.command == "admin":
        return admin_cli.run(args)
    if args.command == "sql":
        return sql_cli.run(args)
    if args.command == "restore":
        return _restore(args)
    return _replay(args)


if __name__ == "__main__":
    raise SystemExit(main())
