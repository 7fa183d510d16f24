"""Shared test configuration.

Unit tests (``tests/unit``) must not touch the network: an autouse guard makes any socket
connection there fail loudly, so a test that quietly needs a real service is caught and moved
behind a marker (kafka, clickhouse, e2e).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# No per-example deadline: a property either holds or not, and a busy machine (CI shares two
# cores with the servers the suite starts) must not turn a slow example into a failure. Speed is
# measured by `make bench`, never asserted in tests.
settings.register_profile("codetrackr", deadline=None)
settings.load_profile("codetrackr")


@pytest.fixture(autouse=True)
def _no_network_in_unit_tests(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    if "tests/unit" in Path(str(request.node.fspath)).as_posix():

        def refuse(*_: object, **__: object) -> None:
            raise RuntimeError("unit tests may not open network connections; use a marker")

        monkeypatch.setattr(socket.socket, "connect", refuse)
        monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last. Playwright's sync API keeps an event loop running in the main
    thread while the session's browser is open (tests/browser/conftest.py), and neither
    pytest-asyncio nor ``asyncio.run`` can start one beside it."""
    browser = [item for item in items if "tests/browser/" in Path(str(item.fspath)).as_posix()]
    if browser:
        last = set(browser)
        items[:] = [item for item in items if item not in last] + browser
