"""The plugin key-value contract: the embedded (SQLite) and the Redis adapters pass the same tests.

The Redis variants run against a real ``redis-server`` (``tests/support/redis_server.py``) with
the append-only file on, as deployed: one per module for the tests that keep to users of their
own, one per test for those that restart or stop it. A few tests at the end check what only one
adapter has (the Redis key layout operators see, the SQLite file's mode, ``kill -9``).
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import stat
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis.asyncio import Redis

from plugins_runtime.host import MAX_KEY_CHARS, HostCallError
from plugins_runtime.kv import MAX_VALUE_BYTES, KeyValueUnavailable, PluginKeyValue
from plugins_runtime.kv_redis import RedisPluginKeyValue, escape_glob
from plugins_runtime.kv_sqlite import SqlitePluginKeyValue
from tests.support.redis_server import RedisServer, running_redis

ROOT = Path(__file__).resolve().parents[2]
KINDS = [pytest.param("sqlite"), pytest.param("redis", marks=pytest.mark.redis)]
ALPHA, BETA = "alpha", "beta-counter"
# Keys a plugin may use that mean something to a glob pattern or to the namespace layout.
TRICKY_KEYS = ["a:b", "*", "?", "[ab]", "\\", "plugin:beta-counter:x:y", "*:*", "]["]


@dataclass
class Backend:
    """Where this test's adapters keep their data: a SQLite file or a Redis server."""

    kind: str
    path: Path
    server: RedisServer | None
    opened: list[PluginKeyValue] = field(default_factory=list)

    async def open(self) -> PluginKeyValue:
        """A started adapter on this backend (closed after the test)."""
        kv: PluginKeyValue
        if self.server is None:
            kv = SqlitePluginKeyValue(self.path)
        else:
            kv = RedisPluginKeyValue(self.server.url, connect_timeout_s=1.0, op_timeout_s=2.0)
        await kv.start()
        self.opened.append(kv)
        return kv

    def restart(self) -> None:
        """Restart the Redis server (SIGTERM, then start on the same port and directory)."""
        if self.server is not None:
            self.server.restart()

    async def close(self) -> None:
        for kv in reversed(self.opened):
            await kv.close()


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    yield from running_redis(appendonly=True)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def backend(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Backend]:
    """Shared Redis server (tests use users of their own) or a fresh SQLite file."""
    server: RedisServer | None = (
        request.getfixturevalue("shared_redis") if kind == "redis" else None
    )
    found = Backend(kind, tmp_path / "plugin-kv.sqlite3", server)
    yield found
    await found.close()


@pytest.fixture
async def own_backend(kind: str, tmp_path: Path) -> AsyncIterator[Backend]:
    """A backend this test may restart or stop: its own Redis server (append-only file on)."""
    servers = iter(running_redis(appendonly=True)) if kind == "redis" else None
    server = next(servers) if servers is not None else None
    found = Backend(kind, tmp_path / "plugin-kv.sqlite3", server)
    try:
        yield found
    finally:
        await found.close()
        if servers is not None:
            next(servers, None)  # closes the server


@pytest.fixture
async def kv(backend: Backend) -> PluginKeyValue:
    return await backend.open()


@pytest.fixture
def users() -> tuple[str, str]:
    """Two user ids unused elsewhere (ids are uuid hex, as accounts mint them)."""
    return uuid.uuid4().hex, uuid.uuid4().hex


# ---- get / set / delete / incr ----------------------------------------------------------------


async def test_get_set_delete(kv: PluginKeyValue, users: tuple[str, str]) -> None:
    user, _ = users
    assert await kv.get(ALPHA, user, "last-lang") is None
    await kv.set(ALPHA, user, "last-lang", "Python")
    assert await kv.get(ALPHA, user, "last-lang") == "Python"
    await kv.set(ALPHA, user, "last-lang", "Rust")
    assert await kv.get(ALPHA, user, "last-lang") == "Rust"
    await kv.set(ALPHA, user, "empty", "")
    assert await kv.get(ALPHA, user, "empty") == ""
    await kv.set(ALPHA, user, "unicode", "héllo ☃ 𝄞")
    assert await kv.get(ALPHA, user, "unicode") == "héllo ☃ 𝄞"
    await kv.set(ALPHA, user, "nul\x00key", "a\x00b")  # JS strings may hold NUL
    assert await kv.get(ALPHA, user, "nul\x00key") == "a\x00b"
    await kv.delete(ALPHA, user, "last-lang")
    assert await kv.get(ALPHA, user, "last-lang") is None
    await kv.delete(ALPHA, user, "never-set")  # absent: nothing happens
    assert await kv.dump_user(user) == {
        ALPHA: {"empty": "", "unicode": "héllo ☃ 𝄞", "nul\x00key": "a\x00b"}
    }


async def test_incr_counts_from_zero_and_stores_a_string(
    kv: PluginKeyValue, users: tuple[str, str]
) -> None:
    user, _ = users
    assert await kv.incr(ALPHA, user, "count:proj") == 1
    assert await kv.incr(ALPHA, user, "count:proj") == 2
    assert await kv.get(ALPHA, user, "count:proj") == "2"
    await kv.set(ALPHA, user, "n", "41")
    assert await kv.incr(ALPHA, user, "n") == 42
    await kv.set(ALPHA, user, "neg", "-1")
    assert await kv.incr(ALPHA, user, "neg") == 0
    await kv.set(ALPHA, user, "low", str(-(2**63)))
    assert await kv.incr(ALPHA, user, "low") == -(2**63) + 1


async def test_incr_is_atomic_across_clients(backend: Backend, users: tuple[str, str]) -> None:
    user, _ = users
    first, second = await backend.open(), await backend.open()
    results = await asyncio.gather(
        *(store.incr(ALPHA, user, "hits") for _ in range(40) for store in (first, second))
    )
    assert sorted(results) == list(range(1, 81))
    assert await first.get(ALPHA, user, "hits") == "80"


@pytest.mark.parametrize(
    "value", ["abc", "1.5", "", " 1", "1 ", "01", "+1", "-0", "1e3", str(2**63), str(-(2**63) - 1)]
)
async def test_incr_refuses_a_value_that_is_not_an_integer(
    kv: PluginKeyValue, users: tuple[str, str], value: str
) -> None:
    user, _ = users
    await kv.set(ALPHA, user, "k", value)
    with pytest.raises(
        HostCallError, match=r"^ctx\.redis\.incr: the value of 'k' is not an integer$"
    ):
        await kv.incr(ALPHA, user, "k")
    assert await kv.get(ALPHA, user, "k") == value


async def test_incr_refuses_to_overflow(kv: PluginKeyValue, users: tuple[str, str]) -> None:
    user, _ = users
    await kv.set(ALPHA, user, "k", str(2**63 - 1))
    with pytest.raises(HostCallError, match="would overflow"):
        await kv.incr(ALPHA, user, "k")
    assert await kv.get(ALPHA, user, "k") == str(2**63 - 1)


# ---- bounds ------------------------------------------------------------------------------------


async def test_value_size_is_capped_in_utf8_bytes(
    kv: PluginKeyValue, users: tuple[str, str]
) -> None:
    user, _ = users
    largest = "x" * MAX_VALUE_BYTES
    await kv.set(ALPHA, user, "blob", largest)
    assert await kv.get(ALPHA, user, "blob") == largest
    with pytest.raises(HostCallError, match=rf"{MAX_VALUE_BYTES + 1} bytes, more than the"):
        await kv.set(ALPHA, user, "blob", largest + "y")
    two_byte = "é" * (MAX_VALUE_BYTES // 2)
    await kv.set(ALPHA, user, "accents", two_byte)
    with pytest.raises(HostCallError, match="more than the 65536 allowed"):
        await kv.set(ALPHA, user, "accents", two_byte + "é")
    assert await kv.get(ALPHA, user, "blob") == largest  # the refused set changed nothing
    assert await kv.get(ALPHA, user, "accents") == two_byte


@pytest.mark.parametrize("key", ["", "k" * (MAX_KEY_CHARS + 1), "lone-\ud800-surrogate"])
async def test_keys_out_of_bounds_are_refused(
    kv: PluginKeyValue, users: tuple[str, str], key: str
) -> None:
    user, _ = users
    for call in (
        kv.get(ALPHA, user, key),
        kv.set(ALPHA, user, key, "v"),
        kv.delete(ALPHA, user, key),
        kv.incr(ALPHA, user, key),
    ):
        with pytest.raises(HostCallError, match=r"^ctx\.redis: key "):
            await call
    assert await kv.dump_user(user) == {}


async def test_longest_key_is_accepted(kv: PluginKeyValue, users: tuple[str, str]) -> None:
    user, _ = users
    key = "k" * MAX_KEY_CHARS
    await kv.set(ALPHA, user, key, "v")
    assert await kv.get(ALPHA, user, key) == "v"


@pytest.mark.parametrize(
    ("plugin", "user_id"),
    [
        ("Alpha", "u1"),
        ("alpha:x", "u1"),
        ("alpha*", "u1"),
        ("", "u1"),
        ("-alpha", "u1"),
        ("alpha", "u:1"),
        ("alpha", "u*"),
        ("alpha", "u?"),
        ("alpha", "u[1]"),
        ("alpha", "u\\1"),
        ("alpha", ""),
        ("alpha", "u 1"),
    ],
)
async def test_invalid_plugin_names_and_user_ids_are_refused(
    kv: PluginKeyValue, plugin: str, user_id: str
) -> None:
    with pytest.raises(ValueError, match=r"plugin name|user id"):
        await kv.set(plugin, user_id, "k", "v")
    with pytest.raises(ValueError, match=r"plugin name|user id"):
        await kv.delete_plugin_user(plugin, user_id)
    if plugin == "alpha":
        with pytest.raises(ValueError, match="user id"):
            await kv.dump_user(user_id)
        with pytest.raises(ValueError, match="user id"):
            await kv.delete_user(user_id)


# ---- namespaces --------------------------------------------------------------------------------


async def _fill(kv: PluginKeyValue, users: tuple[str, str]) -> dict[tuple[str, str, str], str]:
    """Every tricky key (and a key naming the other user) in 2 plugins x 2 users, each with a
    value naming its namespace."""
    first, second = users
    written: dict[tuple[str, str, str], str] = {}
    for plugin in (ALPHA, BETA):
        for user, other in ((first, second), (second, first)):
            for key in [*TRICKY_KEYS, f"{other}:x", f"{other}", "count"]:
                value = f"{plugin}/{user}/{key}"
                await kv.set(plugin, user, key, value)
                written[(plugin, user, key)] = value
    return written


async def test_plugins_and_users_never_see_each_others_keys(
    kv: PluginKeyValue, users: tuple[str, str]
) -> None:
    written = await _fill(kv, users)
    for (plugin, user, key), value in written.items():
        assert await kv.get(plugin, user, key) == value
    first, second = users
    # Deleting and counting in one namespace leaves the same key of the others alone.
    await kv.delete(ALPHA, first, "*")
    assert await kv.incr(BETA, second, f"{first}:count") == 1
    assert await kv.get(ALPHA, first, "*") is None
    assert await kv.get(ALPHA, second, "*") == f"{ALPHA}/{second}/*"
    assert await kv.get(BETA, first, "*") == f"{BETA}/{first}/*"
    assert await kv.get(BETA, first, f"{first}:count") is None


async def test_dump_user_lists_each_plugins_keys_without_prefix(
    kv: PluginKeyValue, users: tuple[str, str]
) -> None:
    written = await _fill(kv, users)
    for user in users:
        expected: dict[str, dict[str, str]] = {}
        for (plugin, owner, key), value in written.items():
            if owner == user:
                expected.setdefault(plugin, {})[key] = value
        assert await kv.dump_user(user) == expected
    assert await kv.dump_user(uuid.uuid4().hex) == {}


async def test_delete_user_deletes_every_plugins_keys_of_that_user_only(
    kv: PluginKeyValue, users: tuple[str, str]
) -> None:
    written = await _fill(kv, users)
    first, second = users
    mine = sum(1 for (_, user, _) in written if user == first)
    assert await kv.delete_user(first) == mine
    assert await kv.dump_user(first) == {}
    for (plugin, user, key), value in written.items():
        assert await kv.get(plugin, user, key) == (value if user == second else None)
    assert await kv.delete_user(first) == 0


async def test_delete_plugin_user_deletes_one_plugins_keys_of_one_user(
    kv: PluginKeyValue, users: tuple[str, str]
) -> None:
    written = await _fill(kv, users)
    first, _ = users
    mine = sum(1 for (plugin, user, _) in written if (plugin, user) == (ALPHA, first))
    assert await kv.delete_plugin_user(ALPHA, first) == mine
    for (plugin, user, key), value in written.items():
        expected = None if (plugin, user) == (ALPHA, first) else value
        assert await kv.get(plugin, user, key) == expected
    assert ALPHA not in await kv.dump_user(first)
    assert await kv.delete_plugin_user(ALPHA, first) == 0


# ---- host markers ------------------------------------------------------------------------------


async def test_mark_once_is_set_if_absent_across_clients(
    backend: Backend, users: tuple[str, str]
) -> None:
    user, _ = users
    first, second = await backend.open(), await backend.open()
    marker = f"installed:{ALPHA}:{user}"
    assert await first.mark_once(marker) is True
    assert await first.mark_once(marker) is False
    assert await second.mark_once(marker) is False
    results = await asyncio.gather(*(s.mark_once(f"{marker}:race") for s in (first, second) * 5))
    assert sorted(results) == [False] * 9 + [True]
    await second.unmark(marker)
    assert await first.mark_once(marker) is True
    await first.unmark(f"{marker}:never-set")  # absent: nothing happens


async def test_markers_are_outside_every_plugin_namespace(
    kv: PluginKeyValue, users: tuple[str, str]
) -> None:
    user, _ = users
    marker = f"installed:{ALPHA}:{user}"
    await kv.set(ALPHA, user, marker, "plugin data")
    await kv.set(ALPHA, user, f"host:{marker}", "plugin data")
    assert await kv.mark_once(marker) is True
    assert await kv.dump_user(user) == {
        ALPHA: {marker: "plugin data", f"host:{marker}": "plugin data"}
    }
    assert await kv.delete_plugin_user(ALPHA, user) == 2
    assert await kv.mark_once(marker) is False  # the host's marker is not the plugin's data
    await kv.unmark(marker)


# ---- durability and availability ---------------------------------------------------------------


async def test_data_survives_close_and_restart(
    own_backend: Backend, users: tuple[str, str]
) -> None:
    user, other = users
    kv = await own_backend.open()
    await kv.set(ALPHA, user, "last-lang", "Go")
    assert await kv.incr(BETA, other, "count:proj") == 1
    assert await kv.incr(BETA, other, "count:proj") == 2
    await kv.set(ALPHA, user, "gone", "x")
    await kv.delete(ALPHA, user, "gone")
    assert await kv.mark_once("installed") is True
    await kv.close()
    own_backend.restart()
    reopened = await own_backend.open()
    assert await reopened.dump_user(user) == {ALPHA: {"last-lang": "Go"}}
    assert await reopened.incr(BETA, other, "count:proj") == 3
    assert await reopened.mark_once("installed") is False


async def test_a_closed_store_is_unavailable(kv: PluginKeyValue, users: tuple[str, str]) -> None:
    user, _ = users
    await kv.set(ALPHA, user, "k", "v")
    await kv.close()
    for call in (
        kv.get(ALPHA, user, "k"),
        kv.set(ALPHA, user, "k", "w"),
        kv.delete(ALPHA, user, "k"),
        kv.incr(ALPHA, user, "n"),
        kv.dump_user(user),
        kv.delete_user(user),
        kv.delete_plugin_user(ALPHA, user),
        kv.mark_once("m"),
        kv.unmark("m"),
    ):
        with pytest.raises(KeyValueUnavailable):
            await call
    await kv.close()  # closing twice is harmless


async def test_a_store_never_started_is_unavailable(backend: Backend) -> None:
    kv: PluginKeyValue = (
        SqlitePluginKeyValue(backend.path)
        if backend.server is None
        else RedisPluginKeyValue(backend.server.url)
    )
    with pytest.raises(KeyValueUnavailable):
        await kv.get(ALPHA, "u1", "k")


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["redis"])
async def test_redis_down_is_unavailable_until_it_returns(
    own_backend: Backend, users: tuple[str, str]
) -> None:
    user, _ = users
    assert own_backend.server is not None
    kv = await own_backend.open()
    await kv.set(ALPHA, user, "k", "v")
    own_backend.server.stop()
    for call in (
        kv.get(ALPHA, user, "k"),
        kv.set(ALPHA, user, "k", "w"),
        kv.delete(ALPHA, user, "k"),
        kv.incr(ALPHA, user, "n"),
        kv.dump_user(user),
        kv.delete_user(user),
        kv.delete_plugin_user(ALPHA, user),
        kv.mark_once("m"),
        kv.unmark("m"),
    ):
        with pytest.raises(KeyValueUnavailable, match=r"^Redis: "):
            await call
    own_backend.server.start()
    assert await kv.get(ALPHA, user, "k") == "v"  # the same client recovers


async def test_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    kv = SqlitePluginKeyValue(tmp_path / "not-a-dir" / "plugin-kv.sqlite3")
    with pytest.raises(KeyValueUnavailable, match="plugin key-value file"):
        await kv.start()
    with pytest.raises(KeyValueUnavailable):
        await kv.get(ALPHA, "u1", "k")


# ---- what only one adapter has -----------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["redis"])
async def test_redis_keys_have_the_documented_layout(
    kv: PluginKeyValue, backend: Backend, users: tuple[str, str]
) -> None:
    user, _ = users
    assert backend.server is not None
    await kv.incr(ALPHA, user, "count:my-project")
    await kv.set(ALPHA, user, "[x]*", "glob")
    assert await kv.mark_once(f"installed:{ALPHA}:{user}") is True
    raw = Redis.from_url(backend.server.url, decode_responses=True)
    try:
        assert await raw.get(f"plugin:{ALPHA}:{user}:count:my-project") == "1"
        assert await raw.get(f"plugin:{ALPHA}:{user}:[x]*") == "glob"
        assert await raw.get(f"host:installed:{ALPHA}:{user}") == "1"
        assert sorted([k async for k in raw.scan_iter(match=f"*{user}*")]) == [
            f"host:installed:{ALPHA}:{user}",
            f"plugin:{ALPHA}:{user}:[x]*",
            f"plugin:{ALPHA}:{user}:count:my-project",
        ]
        # An escaped pattern matches its text literally: "[x]*" is not "x" followed by anything.
        await raw.set(f"plugin:{ALPHA}:{user}:x-lookalike", "not matched")
        literal = escape_glob(f"plugin:{ALPHA}:{user}:[x]*")
        assert [k async for k in raw.scan_iter(match=literal)] == [f"plugin:{ALPHA}:{user}:[x]*"]
    finally:
        await raw.aclose()


@pytest.mark.parametrize("kind", ["sqlite"])
async def test_sqlite_file_is_private_and_holds_one_row_per_key(
    kv: PluginKeyValue, backend: Backend, users: tuple[str, str]
) -> None:
    user, _ = users
    await kv.set(ALPHA, user, "a:b", "1")
    await kv.incr(BETA, user, "n")
    for suffix in ("", "-wal", "-shm"):
        path = backend.path.with_name(backend.path.name + suffix)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    with closing(sqlite3.connect(backend.path)) as conn:
        rows = conn.execute(
            "SELECT plugin, user_id, key, value FROM plugin_kv ORDER BY 1"
        ).fetchall()
    assert rows == [(ALPHA, user, "a:b", "1"), (BETA, user, "n", "1")]


_WRITE_THEN_DIE = """
import asyncio, os, signal, sys
from pathlib import Path
from plugins_runtime.kv_sqlite import SqlitePluginKeyValue

async def main() -> None:
    kv = SqlitePluginKeyValue(Path(sys.argv[1]))
    await kv.start()
    await kv.set("alpha", "u1", "k", "answered")
    print(await kv.incr("alpha", "u1", "n"), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def test_sqlite_answered_writes_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "plugin-kv.sqlite3"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WRITE_THEN_DIE,
        str(path),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode == -signal.SIGKILL, stderr.decode()
    assert stdout.decode().strip() == "1"
    kv = SqlitePluginKeyValue(path)
    await kv.start()
    try:
        assert await kv.dump_user("u1") == {"alpha": {"k": "answered", "n": "1"}}
    finally:
        await kv.close()


_COUNT = """
import asyncio, sys
from pathlib import Path
from plugins_runtime.kv_sqlite import SqlitePluginKeyValue

async def main() -> None:
    kv = SqlitePluginKeyValue(Path(sys.argv[1]))
    await kv.start()
    got = [await kv.incr("alpha", "u1", "n") for _ in range(int(sys.argv[2]))]
    await kv.close()
    print(" ".join(map(str, got)), flush=True)

asyncio.run(main())
"""


async def test_sqlite_incr_is_atomic_across_processes(tmp_path: Path) -> None:
    """The server (RPC calls) and its hook process open the same file: counting from both, and
    from a third, loses no increment and hands out no value twice."""
    path = tmp_path / "plugin-kv.sqlite3"
    each = 150
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _COUNT,
            str(path),
            str(each),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    kv = SqlitePluginKeyValue(path)
    await kv.start()
    try:
        mine = [await kv.incr(ALPHA, "u1", "n") for _ in range(each)]
        outputs = [await asyncio.wait_for(c.communicate(), timeout=120) for c in children]
        for child, (_, stderr) in zip(children, outputs, strict=True):
            assert child.returncode == 0, stderr.decode()
        theirs = [int(n) for stdout, _ in outputs for n in stdout.split()]
        assert sorted(mine + theirs) == list(range(1, 3 * each + 1))
        assert await kv.get(ALPHA, "u1", "n") == str(3 * each)
    finally:
        await kv.close()
