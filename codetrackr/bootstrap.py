"""The composition root: builds adapters from settings and wires them into each service.

Roles: ``serve`` (everything on embedded defaults: ingest, read API and the in-process
projection runner in one process, the plugin hook processor in a child process it supervises),
``ingest`` (write endpoints only), ``api`` (accounts and reads). The faust worker and replay are
wired in :mod:`codetrackr.cli` from the same builders.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

from fastapi import Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from accounts.credentials import TokenIssuer
from accounts.directory import AccountDirectory
from accounts.oauth import OAuthProvider, StateSigner
from accounts.sessions import SessionService
from api.deps import ApiParts, OAuthSetup
from api.deps import install as install_api_parts
from api.routes import (
    accounts,
    admin,
    ai,
    erasure,
    ingest_rules,
    leaderboards,
    oauth,
    plugin_editor,
    plugin_rpc,
    plugin_store,
    profiles,
    project_naming,
    shields,
    stats,
    themes,
    wakapi,
    wakatime,
)
from api.routes.analyst_sql import build_analyst_router
from api.routes.badges import build_badges_router, build_public_stats_router
from api.routes.export import build_export_router
from api.routes.live import build_live_router
from codetrackr.health import Readiness, install_health_routes
from codetrackr.hooks import build_hooks, hook_process_running, hooks_running
from codetrackr.metrics import Metrics, MetricsMiddleware, metrics_endpoint
from codetrackr.plugins import PluginRuntime, build_plugin_runtime
from codetrackr.settings import Settings
from eventlog.embedded import SqliteEventLog
from eventlog.factory import open_event_log
from eventlog.port import EventLog
from http_edge.auth import Authenticator, AuthGuards, Principal
from http_edge.compat import include_aliased
from http_edge.cors import ApiCorsMiddleware
from http_edge.errors import install_error_handlers
from http_edge.filters import reject_unsupported_filters
from http_edge.ratelimit import RateLimiter, open_rate_limiter
from http_edge.ratelimit_http import ApiKeyBudget, RateLimitMiddleware
from ingest.appender import HeartbeatAppender
from ingest.routes import build_ingest_router
from ingest.wakapi import build_wakapi_ingest_router
from ingest.wakatime_import import build_wakatime_import_router
from live.factory import open_live_channel, open_ticket_store
from live.port import LiveChannel, LivePublisher
from live.tickets import TicketStore
from plugin_host.executor import PluginPolicy, PluginServices
from processors.deadletters import DEAD_LETTER_TOPICS
from processors.erasure import erase_from_log
from processors.handlers import HeartbeatProjector
from processors.projectors.goals import GoalOwner, GoalSource, GoalWatch
from processors.runner import ProjectionRunner
from processors.supervision import SupervisionPolicy
from projections.ai_usage import PricingTable
from projections.clickhouse import ClickHouseProjectionStore
from projections.clickhouse.analyst import AnalystQueries
from projections.clickhouse.analytics import analytics_database
from schemas.events import ACCOUNTS_TOPIC, HEARTBEATS_TOPIC
from web.routes import install_web
from web.session import build_session_router

Role = Literal["serve", "ingest", "api"]
_log = logging.getLogger(__name__)


def private_dir(path: Path) -> Path:
    """Create ``path`` for its owner alone (0700), or tighten it: it holds the event log, the
    projections and the JWT secret, which nobody else on the machine may read."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def build_event_log(settings: Settings) -> EventLog:
    return open_event_log(settings.event_log_url, settings.data_dir)


def supervision_policy(settings: Settings) -> SupervisionPolicy:
    """The projectors' supervision policy (both runners) from the settings."""
    return SupervisionPolicy(
        max_attempts=settings.projector_max_attempts,
        initial_delay_s=settings.projector_retry_initial_s,
        max_delay_s=max(settings.projector_retry_max_s, settings.projector_retry_initial_s),
        max_consecutive_dead_letters=settings.projector_max_consecutive_dead_letters,
    )


def build_store(settings: Settings) -> ClickHouseProjectionStore:
    url = settings.resolved_clickhouse_url()
    if url.startswith("chdb://"):  # the embedded engine's files are ours to protect
        private_dir(Path(url.removeprefix("chdb://")))
    return ClickHouseProjectionStore(
        settings.resolved_clickhouse_url(), database=settings.clickhouse_database
    )


async def prepare_log(log: EventLog, settings: Settings) -> None:
    await log.start()
    await log.ensure_topics(
        {HEARTBEATS_TOPIC: settings.heartbeat_partitions, ACCOUNTS_TOPIC: 1, **DEAD_LETTER_TOPICS}
    )


def oauth_providers(settings: Settings) -> dict[str, OAuthProvider]:
    """The identity providers with a client id and secret configured, by name."""
    gitlab = settings.oauth_gitlab_url.rstrip("/")
    candidates = {
        "github": (
            settings.oauth_github_client_id,
            settings.oauth_github_client_secret,
            settings.oauth_github_authorize_url,
            settings.oauth_github_token_url,
            settings.oauth_github_userinfo_url,
            settings.oauth_github_scope,
        ),
        "gitlab": (
            settings.oauth_gitlab_client_id,
            settings.oauth_gitlab_client_secret,
            settings.oauth_gitlab_authorize_url or f"{gitlab}/oauth/authorize",
            settings.oauth_gitlab_token_url or f"{gitlab}/oauth/token",
            settings.oauth_gitlab_userinfo_url or f"{gitlab}/api/v4/user",
            settings.oauth_gitlab_scope,
        ),
        "oidc": (
            settings.oauth_oidc_client_id,
            settings.oauth_oidc_client_secret,
            settings.oauth_oidc_authorize_url,
            settings.oauth_oidc_token_url,
            settings.oauth_oidc_userinfo_url,
            settings.oauth_oidc_scope,
        ),
    }
    providers = {}
    for name, (client_id, secret, authorize, token, userinfo, scope) in candidates.items():
        if client_id and secret is not None and authorize and token and userinfo:
            providers[name] = OAuthProvider(
                name, client_id, secret.get_secret_value(), authorize, token, userinfo, scope
            )
    return providers


@dataclass
class PluginParts:
    """What runs plugins in an API process: built once in :func:`create_app`, started and
    stopped by :func:`plugins_running` (the app's lifespan)."""

    runtime: PluginRuntime
    services: PluginServices


def build_plugins(settings: Settings, directory: AccountDirectory) -> PluginParts:
    """The plugin runtime and the store's policy (no I/O until started)."""
    runtime = build_plugin_runtime(settings, directory)
    policy = PluginPolicy(settings.plugin_publish, frozenset(a.lower() for a in settings.admins))
    return PluginParts(runtime, PluginServices(runtime.executor, policy))


@contextlib.asynccontextmanager
async def plugins_running(plugins: PluginParts | None) -> AsyncIterator[None]:
    """Start the key-value store; on the way out wait for running executions, then close the
    sandbox's threads, the plugin SQL clients and the key-value store."""
    if plugins is None:
        yield
        return
    await plugins.runtime.kv.start()
    try:
        yield
    finally:
        await plugins.runtime.close()


@dataclass
class _Parts:
    log: EventLog
    directory: AccountDirectory
    store: ClickHouseProjectionStore | None
    live: LiveChannel | None = None
    tickets: TicketStore | None = None
    limiter: RateLimiter | None = None
    readiness: Readiness | None = None
    metrics: Metrics | None = None
    analysts: AnalystQueries | None = None


def create_app(settings: Settings, role: Role = "serve") -> FastAPI:
    private_dir(settings.data_dir)
    log = build_event_log(settings)
    # On Kafka other processes write the accounts topic too: authenticate after a sync with it.
    directory = AccountDirectory(log, shared_log=settings.event_log_url.startswith("kafka://"))
    tokens = TokenIssuer(settings.resolved_jwt_secret(), ttl_s=settings.access_token_ttl_s)
    authenticator = Authenticator(directory, tokens)
    sessions = SessionService(directory, tokens, refresh_ttl_s=settings.refresh_token_ttl_s)
    store = build_store(settings) if role in ("serve", "api") else None
    live = open_live_channel(settings.redis_url) if role in ("serve", "api") else None
    tickets = open_ticket_store(settings.redis_url) if live is not None else None
    limiter = (
        open_rate_limiter(settings.redis_url, settings.rate_limits())
        if settings.rate_limit_enabled
        else None
    )
    readiness = Readiness(
        role,
        log,
        store_ping=store.table_names if store is not None else None,
        expects_projector=role == "serve",
        timeout_s=settings.readiness_timeout_s,
    )
    metrics = Metrics(role)
    # The same list: what the readiness check reads, /metrics reads too.
    metrics.sources.projectors = readiness.projectors
    analysts = (
        AnalystQueries(settings.resolved_clickhouse_url()) if role in ("serve", "api") else None
    )
    parts = _Parts(log, directory, store, live, tickets, limiter, readiness, metrics, analysts)
    plugins = build_plugins(settings, directory) if role in ("serve", "api") else None
    if plugins is not None:
        metrics.sources.executors.append(("rpc", plugins.runtime.executor))
    budget = ApiKeyBudget(limiter)

    async def authenticate(request: Request) -> Principal:
        return await budget.charge(request, await authenticator.authenticate(request))

    async def authenticate_write(request: Request) -> Principal:
        return await budget.charge(request, await authenticator.authenticate(request, write=True))

    async def authenticate_login(request: Request) -> Principal:
        return await authenticator.authenticate(request, allow_api_key=False)

    guards = AuthGuards(authenticate, authenticate_write, authenticate_login)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with running(parts, settings, role), plugins_running(plugins):
            yield

    app = FastAPI(
        title="CodeTrackr",
        version="0.1.0",
        description="Event-sourced coding activity tracker with a WakaTime-compatible API.",
        lifespan=lifespan,
        # A known filter a route does not apply is refused (400), never silently ignored.
        dependencies=[Depends(reject_unsupported_filters)],
    )
    install_error_handlers(app)
    if limiter is not None:
        app.add_middleware(
            RateLimitMiddleware,
            limiter=limiter,
            trusted_proxies=settings.trusted_proxy_networks(),
            ip_headers=settings.client_ip_headers,
        )
    if role in ("serve", "ingest"):
        appender = HeartbeatAppender(log, observe=metrics.observe_append)
        app.include_router(
            build_ingest_router(
                authenticate_write,  # a read-only API key is refused (403)
                appender,
                body_limit=settings.body_limit_bytes,
                import_body_limit=settings.import_body_limit_bytes,
            )
        )
        app.include_router(
            build_wakapi_ingest_router(
                authenticate_write, appender, body_limit=settings.body_limit_bytes
            )
        )
        app.include_router(
            build_wakatime_import_router(
                authenticate_write,
                appender,
                spool_dir=settings.data_dir / "imports",
                size_limit=settings.wakatime_import_limit_bytes,
            )
        )
    if role in ("serve", "api"):
        assert store is not None
        install_api_parts(
            app.state,
            ApiParts(
                guards=guards,
                is_authenticated=Authenticator.carries_credentials,
                directory=directory,
                sessions=sessions,
                log=log,
                store=store,
                oauth=OAuthSetup(
                    oauth_providers(settings),
                    StateSigner(settings.resolved_jwt_secret()),
                    public_url=settings.public_url,
                    return_url=settings.oauth_return_url,
                ),
                plugins=plugins.services if plugins is not None else None,
                ai_pricing=PricingTable.load(settings.ai_pricing_file),
            ),
        )
        app.include_router(accounts.router)
        app.include_router(erasure.router)
        app.include_router(oauth.router)
        app.include_router(profiles.router)
        app.include_router(project_naming.router)
        app.include_router(ingest_rules.router)
        app.include_router(stats.router)
        app.include_router(ai.router)
        app.include_router(
            build_export_router(
                authenticate, directory, store, plugins.runtime.kv if plugins is not None else None
            )
        )
        app.include_router(
            build_public_stats_router(directory, store, ttl_s=settings.public_stats_ttl_s)
        )
        app.include_router(build_badges_router(directory, store))
        app.include_router(leaderboards.router)
        assert live is not None
        assert tickets is not None
        app.include_router(
            build_live_router(
                authenticate,
                live,
                tickets,
                still_valid=lambda g: directory.holds(g.user_id, g.session_id, g.key_id),
            )
        )
        include_aliased(app, wakatime.router)
        app.include_router(wakapi.router)  # after WakaTime's: its statusbar/today stays theirs
        app.include_router(shields.router)
        app.include_router(plugin_store.router)
        app.include_router(themes.router)
        app.include_router(plugin_rpc.router)
        app.include_router(admin.router)
        assert parts.analysts is not None
        may_query = frozenset(name.lower() for name in (*settings.admins, *settings.analysts))
        app.include_router(
            build_analyst_router(
                directory,
                parts.analysts,
                database=settings.clickhouse_database,
                analytics_database=analytics_database(settings.clickhouse_database),
                may_query=lambda user: user.username.lower() in may_query,
            )
        )
        app.include_router(plugin_editor.router)
        # The web front end: pages, their assets and the browser's session cookie.
        app.include_router(
            build_session_router(sessions, directory, refresh_ttl_s=settings.refresh_token_ttl_s)
        )
        install_web(app, oauth_providers(settings))

    if role in ("serve", "api"):
        # Widgets run in sandboxed (opaque-origin) frames and read the API cross-origin.
        app.add_middleware(ApiCorsMiddleware)
    install_health_routes(app, role, readiness)
    app.add_api_route(
        "/metrics",
        metrics_endpoint(metrics),
        methods=["GET"],
        include_in_schema=False,
    )
    # Outermost, so rate-limit refusals and every error answer are counted too.
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def goal_owners(directory: AccountDirectory) -> GoalSource:
    """Where live goal checks find a user's timezone and goals: the account directory this
    process folds (read from the goal watch's thread; the fold only replaces whole entries)."""

    def owner(user_id: str) -> GoalOwner | None:
        user = directory.state.users.get(user_id)
        if user is None:
            return None
        return GoalOwner(user.timezone, directory.goals.of(user_id))

    return owner


def _runner_ended(runner: ProjectionRunner, task: asyncio.Task[None]) -> None:
    """Say at once why the supervised runner ended, should its supervision itself fail."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        runner.health.alive = False
        runner.health.failure = f"projector supervision stopped: {exc!r}"
        _log.error("the projection runner stopped for good", exc_info=exc)


@contextlib.asynccontextmanager
async def running(parts: _Parts, settings: Settings, role: Role) -> AsyncIterator[None]:
    """Start what a role needs, in dependency order, and stop it in reverse."""
    await prepare_log(parts.log, settings)
    stop = asyncio.Event()
    runner_task: asyncio.Task[None] | None = None
    runner: ProjectionRunner | None = None
    goal_watch: GoalWatch | None = None
    hooks = contextlib.AsyncExitStack()
    try:
        if parts.live is not None:
            await parts.live.start()  # needs no reachable Redis: live push degrades, never blocks
        if parts.store is not None:
            applied = await run_in_threadpool(parts.store.migrate)
            if applied:
                _log.info("applied migrations: %s", ", ".join(applied))
        await parts.directory.start()
        if role == "serve":
            assert parts.store is not None
            publisher = LivePublisher(parts.live)
            if publisher.active:
                goal_watch = GoalWatch(
                    publisher, goal_owners(parts.directory), parts.store.daily_rows
                ).start()
            projector = HeartbeatProjector(
                parts.store,
                publisher=publisher,
                subscribers=[goal_watch] if goal_watch is not None else [],
            )
            # The embedded log can be rewritten: erasures remove the records themselves too.
            eraser = (
                partial(erase_from_log, parts.log)
                if isinstance(parts.log, SqliteEventLog)
                else None
            )
            runner = ProjectionRunner(
                parts.log, projector, eraser=eraser, policy=supervision_policy(settings)
            )
            await runner.start()
            runner_task = asyncio.create_task(runner.run_supervised(stop), name="projection-runner")
            runner_task.add_done_callback(partial(_runner_ended, runner))
            if parts.readiness is not None:
                parts.readiness.projectors.append(runner)
            # Plugin hooks: a processor of their own, never in the projections' way: in a child
            # process of its own on the embedded log (codetrackr/hooks.py), else in this loop.
            if settings.hooks_process == "process" and isinstance(parts.log, SqliteEventLog):
                await hooks.enter_async_context(
                    hook_process_running(
                        settings,
                        parts.log,
                        parts.live,
                        supervision_policy(settings),
                        parts.readiness,
                        metrics=parts.metrics,
                    )
                )
            else:
                await hooks.enter_async_context(
                    hooks_running(
                        build_hooks(
                            settings,
                            parts.log,
                            parts.directory,
                            parts.live,
                            supervision_policy(settings),
                        ),
                        parts.readiness,
                        metrics=parts.metrics,
                    )
                )
        yield
    finally:
        await hooks.aclose()
        stop.set()
        if runner_task is not None:
            # Let the current batch finish and commit; cancel only if it hangs.
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(runner_task, timeout=10)
        if runner is not None:
            await runner.close()
        if goal_watch is not None:
            await run_in_threadpool(goal_watch.close)
        if parts.live is not None:
            await parts.live.close()
        if parts.tickets is not None:
            await parts.tickets.close()
        if parts.limiter is not None:
            await parts.limiter.close()
        await parts.directory.close()
        await parts.log.close()
        if parts.analysts is not None:
            parts.analysts.close()
        if parts.store is not None:
            parts.store.close()
