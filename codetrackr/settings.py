"""Settings, read once at start-up from ``CODETRACKR_*`` environment variables and CLI flags.

Variables (defaults in brackets):

- ``CODETRACKR_DATA_DIR`` [./data]: embedded log, chdb files, generated JWT secret.
- ``CODETRACKR_EVENT_LOG_URL`` [embedded://]: or ``kafka://host:port[,host:port]``.
- ``CODETRACKR_CLICKHOUSE_URL`` [chdb://<data dir>/clickhouse]: or ``http(s)://user:pw@host:8123``.
- ``CODETRACKR_CLICKHOUSE_DATABASE`` [codetrackr]: database holding every projection table.
- ``CODETRACKR_REDIS_URL`` [none]: ``redis://host:6379/0`` for live push and shared rate limits.
- ``CODETRACKR_JWT_SECRET`` [generated once, kept in the data dir]: 32+ random characters.
- ``CODETRACKR_HEARTBEAT_PARTITIONS`` [3]: partitions of ``codetrackr.heartbeats``.
- ``CODETRACKR_HOST`` / ``CODETRACKR_PORT`` [127.0.0.1 / 8000]: where HTTP servers listen (the
  worker serves only ``/healthz`` and ``/readyz`` there).
- ``CODETRACKR_PROJECTOR_MAX_ATTEMPTS`` [3]: failures of one record (other than the store or the
  log being unreachable) before it goes to the dead letters;
  ``CODETRACKR_PROJECTOR_RETRY_INITIAL_S`` / ``_RETRY_MAX_S`` [0.5 / 10]: backoff between retries;
  ``CODETRACKR_PROJECTOR_MAX_CONSECUTIVE_DEAD_LETTERS`` [10]: after that many dead letters in a row
  the store is presumed broken and the projector waits instead (docs/operations.md).
- ``CODETRACKR_READINESS_TIMEOUT_S`` [2]: bound of each ``/readyz`` check.
- ``CODETRACKR_ACCESS_TOKEN_TTL_S`` [900] / ``CODETRACKR_REFRESH_TOKEN_TTL_S`` [30 days]: login
  token lifetimes. ``CODETRACKR_PUBLIC_URL``: this server's external base URL (OAuth callbacks).
- ``CODETRACKR_OAUTH_{GITHUB,GITLAB,OIDC}_CLIENT_ID`` / ``_CLIENT_SECRET`` enable a login provider;
  ``_AUTHORIZE_URL`` / ``_TOKEN_URL`` / ``_USERINFO_URL`` / ``_SCOPE`` override its endpoints,
  ``CODETRACKR_OAUTH_GITLAB_URL`` [https://gitlab.com] points at a self-hosted GitLab
  (docs/accounts.md).
- ``CODETRACKR_PUBLIC_STATS_TTL_S`` [60]: how long the platform totals of
  ``GET /api/v1/stats/public`` are kept before they are summed again.
- ``CODETRACKR_MAX_HEADER_BYTES`` [16384] / ``CODETRACKR_MAX_HEADER_FIELDS`` [100]: the largest
  request head (request line and header fields) and the most header fields a request may carry;
  beyond either the answer is 431 and the connection closes.
- ``CODETRACKR_RATE_LIMIT_ENABLED`` [true]: ``false`` switches every rate limit off.
- ``CODETRACKR_RATE_LIMIT_GENERAL`` / ``_AUTH`` / ``_ACCOUNT_CREATION`` / ``_WEBHOOKS`` /
  ``_BADGES`` / ``_API_KEY``: the
  limits of each class (``limits`` notation, ``;`` between limits, blank: unlimited); defaults
  below and in docs/api.md. Counters live in Redis when ``CODETRACKR_REDIS_URL`` is set.
- ``CODETRACKR_PLUGIN_PUBLISH`` [linked]: who may publish plugins to the store: accounts linked
  to GitHub, GitLab or OIDC (``linked``) or every account (``any``, for self-hosters).
  ``CODETRACKR_ADMINS`` [none]: usernames (comma-separated or a JSON list) that moderate the
  store. ``CODETRACKR_PLUGIN_WORKERS`` [4]: plugin executions at once per process;
  ``CODETRACKR_PLUGIN_TICK_INTERVAL_S`` [60]: how often ``on_tick`` runs per install;
  ``CODETRACKR_PLUGIN_FAILURES_TO_SUSPEND`` [5]: hook failures in a row that suspend a plugin for
  its user. ``CODETRACKR_PLUGIN_TIMEOUT_S`` [15]: the CPU and wall-clock cap of one plugin
  execution (a hook or an RPC call). Plugin key-value data lives in Redis when
  ``CODETRACKR_REDIS_URL`` is set, else in ``<data dir>/plugin-kv.sqlite3``.
- ``CODETRACKR_TRUSTED_PROXIES`` [none]: proxy addresses or networks (comma-separated or a JSON
  list) whose forwarding headers name the client; from any other peer they are ignored.
- ``CODETRACKR_CLIENT_IP_HEADERS`` [CF-Connecting-IP, True-Client-IP, X-Forwarded-For,
  X-Real-IP, X-Client-IP]: which of those headers to read, in priority order.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from http_edge.client_ip import DEFAULT_HEADERS, IpNetwork, parse_networks
from http_edge.header_limits import DEFAULT_MAX_FIELDS, DEFAULT_MAX_HEAD_BYTES
from http_edge.ratelimit import LimitClass, parse_limits

_PLACEHOLDERS = {"changeme", "changethis", "secret", "dev", "test"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CODETRACKR_", extra="ignore")

    data_dir: Path = Path("./data")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    event_log_url: str = "embedded://"
    clickhouse_url: str | None = None
    clickhouse_database: str = "codetrackr"
    redis_url: str | None = None
    jwt_secret: SecretStr | None = None
    heartbeat_partitions: int = Field(default=3, ge=1, le=1024)
    body_limit_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    import_body_limit_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    # POST /api/v1/import/wakatime: the export is spooled to disk, never held in memory.
    wakatime_import_limit_bytes: int = Field(default=16 * 1024**3, ge=1024)
    worker_batch_size: int = Field(default=2000, ge=1)
    projector_max_attempts: int = Field(default=3, ge=1, le=100)
    projector_retry_initial_s: float = Field(default=0.5, gt=0, le=60)
    projector_retry_max_s: float = Field(default=10.0, gt=0, le=600)
    projector_max_consecutive_dead_letters: int = Field(default=10, ge=1)
    readiness_timeout_s: float = Field(default=2.0, gt=0, le=60)
    log_level: str = "info"
    # How long GET /api/v1/stats/public (two scans of every user's days) is kept, in seconds.
    public_stats_ttl_s: float = Field(default=60.0, ge=0, le=3600)
    # Caps on a request head (http_edge/header_limits.py): beyond them the answer is 431.
    max_header_bytes: int = Field(default=DEFAULT_MAX_HEAD_BYTES, ge=1024, le=1024 * 1024)
    max_header_fields: int = Field(default=DEFAULT_MAX_FIELDS, ge=10, le=10_000)
    # Rate limits (http_edge/ratelimit.py). The seed's classes as (rate/s, burst): at most
    # rate + burst in any second and 60 x rate in any minute; Chronova's budget per API key.
    rate_limit_enabled: bool = True
    rate_limit_general: str = "250/second;12000/minute"  # 200/s, burst 50
    rate_limit_auth: str = "120/second;6000/minute"  # 100/s, burst 20
    # Anonymous account creation, per address: a few a minute (a classroom behind one NAT still
    # gets 30 an hour); counted instead of the auth class.
    rate_limit_account_creation: str = "5/minute;30/hour"
    rate_limit_webhooks: str = "15/second;600/minute"  # 10/s, burst 5
    rate_limit_badges: str = "90/second;1800/minute"  # 30/s, burst 60
    rate_limit_api_key: str = "1000/hour"
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    client_ip_headers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_HEADERS)
    )

    # Accounts (docs/accounts.md): token lifetimes, and the identity providers of OAuth login,
    # each enabled by its client id and secret. GitLab's URLs derive from oauth_gitlab_url
    # (a self-hosted GitLab); any OpenID Connect provider is "oidc", by its three URLs.
    public_url: str | None = None  # e.g. https://codetrackr.example.com (OAuth redirect URIs)
    access_token_ttl_s: int = Field(default=15 * 60, ge=30, le=7 * 24 * 3600)
    refresh_token_ttl_s: int = Field(default=30 * 24 * 3600, ge=300, le=400 * 24 * 3600)
    oauth_return_url: str | None = None  # the dashboard page a browser login ends on
    oauth_github_client_id: str | None = None
    oauth_github_client_secret: SecretStr | None = None
    oauth_github_authorize_url: str = "https://github.com/login/oauth/authorize"
    oauth_github_token_url: str = "https://github.com/login/oauth/access_token"
    oauth_github_userinfo_url: str = "https://api.github.com/user"
    oauth_github_scope: str = "read:user"
    oauth_gitlab_client_id: str | None = None
    oauth_gitlab_client_secret: SecretStr | None = None
    oauth_gitlab_url: str = "https://gitlab.com"
    oauth_gitlab_authorize_url: str | None = None  # default <oauth_gitlab_url>/oauth/authorize
    oauth_gitlab_token_url: str | None = None  # default <oauth_gitlab_url>/oauth/token
    oauth_gitlab_userinfo_url: str | None = None  # default <oauth_gitlab_url>/api/v4/user
    oauth_gitlab_scope: str = "read_user"
    oauth_oidc_client_id: str | None = None
    oauth_oidc_client_secret: SecretStr | None = None
    oauth_oidc_authorize_url: str | None = None
    oauth_oidc_token_url: str | None = None
    oauth_oidc_userinfo_url: str | None = None
    oauth_oidc_scope: str = "openid profile"

    # Plugins (docs/plugins.md).
    plugin_publish: Literal["linked", "any"] = "linked"  # who may publish to the store
    admins: Annotated[list[str], NoDecode] = Field(default_factory=list)  # usernames
    # Usernames that may run read-only SQL at /clickhouse/ (admins may too; docs/analytics.md).
    analysts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    plugin_workers: int = Field(default=4, ge=1, le=64)  # QuickJS executions at once
    # Where they run: child processes (beside the server, not in its turn), or server threads.
    plugin_isolation: Literal["process", "thread"] = "process"
    # Where `serve` runs the hook processor: a child process of its own at a lower priority
    # (beside the projection runner, not under its GIL), or its own event loop ("inline").
    hooks_process: Literal["process", "inline"] = "process"
    plugin_tick_interval_s: float = Field(default=60.0, ge=1.0, le=3600.0)
    plugin_failures_to_suspend: int = Field(default=5, ge=1, le=1000)
    plugin_timeout_s: float = Field(default=15.0, gt=0.0, le=300.0)  # per execution, CPU and wall
    # AI token costs (docs/ai.md#tokens-and-cost): a pricing file replacing the shipped table
    ai_pricing_file: str | None = None

    @field_validator("jwt_secret")
    @classmethod
    def _no_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value()
        if raw.lower() in _PLACEHOLDERS or len(raw) < 32:
            raise ValueError("CODETRACKR_JWT_SECRET must be a random string of 32+ characters")
        return value

    @field_validator(
        "rate_limit_general",
        "rate_limit_auth",
        "rate_limit_account_creation",
        "rate_limit_webhooks",
        "rate_limit_badges",
        "rate_limit_api_key",
    )
    @classmethod
    def _valid_limits(cls, value: str) -> str:
        parse_limits(value)
        return value

    @field_validator("trusted_proxies", "client_ip_headers", "admins", "analysts", mode="before")
    @classmethod
    def _list_from_env(cls, value: Any) -> Any:
        """``a, b`` or a JSON list (an environment variable can only be text)."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)
        return value

    def rate_limits(self) -> dict[LimitClass, str]:
        return {
            LimitClass.GENERAL: self.rate_limit_general,
            LimitClass.AUTH: self.rate_limit_auth,
            LimitClass.ACCOUNT_CREATION: self.rate_limit_account_creation,
            LimitClass.WEBHOOKS: self.rate_limit_webhooks,
            LimitClass.BADGES: self.rate_limit_badges,
            LimitClass.API_KEY: self.rate_limit_api_key,
        }

    def trusted_proxy_networks(self) -> tuple[IpNetwork, ...]:
        return parse_networks(self.trusted_proxies)

    def resolved_clickhouse_url(self) -> str:
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    def resolved_jwt_secret(self) -> str:
        """The configured secret, or one generated once and kept (mode 0600) in the data dir."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        path = self.data_dir / "jwt_secret"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        value = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process of this deployment made it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        return value
