"""Authentication while the event log cannot be read answers 503, never 500 or a false 401."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.requests import Request

from accounts.credentials import TokenIssuer, new_api_key
from accounts.directory import AccountDirectory
from eventlog.embedded import SqliteEventLog
from http_edge.auth import Authenticator
from http_edge.errors import ApiError


def request_with_key(key: str) -> Request:
    headers = [(b"x-api-key", key.encode())]
    return Request({"type": "http", "method": "GET", "headers": headers, "query_string": b""})


async def test_authenticate_unknown_key_with_log_down_is_503(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.sqlite")
    await log.start()
    directory = AccountDirectory(log)
    await directory.start()
    authenticator = Authenticator(directory, TokenIssuer("k" * 40))
    await log.close()  # the log goes away under a running process
    try:
        with pytest.raises(ApiError) as info:
            await authenticator.authenticate(request_with_key(new_api_key()))
        assert info.value.status == 503
        assert info.value.headers == {"Retry-After": "5"}
    finally:
        await directory.close()
