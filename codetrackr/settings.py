"""Settings, read once at start-up from ``CODETRACKR_*`` environment variables and CLI flags.

Variables (defaults in brackets):

- ``CODETRACKR_DATA_DIR`` [./data]: embedded log, chdb files, generated JWT secret.
- ``CODETRACKR_EVENT_LOG_URL`` [embedded://]: or ``kafka://host:port[,host:port]``.
- ``CODETRACKR_CLICKHOUSE_URL`` [chdb://<data dir>/clickhouse]: or ``http(s)://user:pw@host:8123``.
- ``CODETRACKR_CLICKHOUSE_DATABASE`` [codetrackr]: database holding every projection table.
- ``CODETRACKR_REDIS_URL`` [none]: ``redis://host:6379/0`` for live push.
- ``CODETRACKR_JWT_SECRET`` [generated once, kept in the data dir]: 32+ random characters.
- ``CODETRACKR_HEARTBEAT_PARTITIONS`` [3]: partitions of ``codetrackr.heartbeats``.
- ``CODETRACKR_HOST`` / ``CODETRACKR_PORT`` [127.0.0.1 / 8000]: where HTTP servers listen.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    worker_batch_size: int = Field(default=2000, ge=1)
    log_level: str = "info"

    @field_validator("jwt_secret")
    @classmethod
    def _no_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value()
        if raw.lower() in _PLACEHOLDERS or len(raw) < 32:
            raise ValueError("CODETRACKR_JWT_SECRET must be a random string of 32+ characters")
        return value

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
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process of this deployment made it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        return value
