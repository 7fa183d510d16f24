"""Where the ClickHouse-backed tests find an engine: fixtures to bind in a test module
(``chdb_url = clickhouse_fixtures.chdb_url``).

chdb hosts one data path per process, so every in-process test shares ONE session-wide path and
gets its own database. The stand-in is a child process holding its own data directory, so it
never collides with the in-process path. A server is used when ``CODETRACKR_TEST_CLICKHOUSE_URL``
names one (``http://user:password@host:8123``); its tests are skipped otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import clickhouse_connect
import pytest

from tests.support.chdb_http import ChdbHttpProcess

SERVER_URL_ENV = "CODETRACKR_TEST_CLICKHOUSE_URL"


@pytest.fixture(scope="session")
def chdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture(scope="session")
def standin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The chdb HTTP stand-in (a child process with its own data directory) for the session."""
    standin = ChdbHttpProcess(tmp_path_factory.mktemp("chdb-http-standin")).start()
    yield standin.url
    standin.stop()


@pytest.fixture(params=["chdb", "http-standin", "server"])
def store_url(request: pytest.FixtureRequest, chdb_url: str) -> str:
    if request.param == "chdb":
        return chdb_url
    if request.param == "http-standin":
        url: str = request.getfixturevalue("standin_url")
        return url
    url = os.environ.get(SERVER_URL_ENV)
    if not url:
        pytest.skip(f"{SERVER_URL_ENV} is not set: no ClickHouse server to test against")
    return url


def drop_database(url: str, database: str) -> None:
    """Drop a test's database from a shared server (chdb's live in a temporary directory)."""
    admin = clickhouse_connect.get_client(dsn=url)
    admin.command(f"DROP DATABASE IF EXISTS `{database}_analytics`")  # its views first
    admin.command(f"DROP DATABASE IF EXISTS `{database}`")
    admin.close()
