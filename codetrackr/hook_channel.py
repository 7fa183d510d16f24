"""The internal channel between ``codetrackr serve`` and its hook process.

The hook process (:mod:`codetrackr.hook_child`) runs plugin hooks beside the server, not in its
event loop. What it cannot do itself it asks the server over this channel:

* ``append`` records to the embedded log and ``commit`` its consumer group's offsets (the log has
  one writer: the server);
* ``query``: run a plugin's ``ctx.db.query`` on the projections (chdb allows one process per data
  directory). The hook process scopes the plugin's SQL itself
  (:func:`plugins_runtime.sql_executor.prepare_query`); the server checks it again and runs it
  with the same read-only settings, row cap and timeout
  (:meth:`~plugins_runtime.sql_executor.ClickHousePluginQueries.run_scoped`);
* ``publish`` a live message (``plugin.event``) to a user's channel, which lives in the server;
* ``report`` its health and counters, shown by ``/readyz`` and ``/metrics``.

The server tells the hook process ``appended`` when the log stored records (at most one message
per :data:`_APPENDED_EVERY_S`), so its readers fetch at once rather than at their next poll.

Transport: a Unix socket in the data directory (0600, in a 0700 directory), never the public
API. The first frame must carry the secret the server drew for this start (32 random bytes, handed
to the child on its stdin); anything else is refused and the connection closed. Frames are
:mod:`plugins_runtime.wire`'s (4-byte length, JSON). A request with an ``id`` gets one answer with
that ``id`` (``ok`` or ``error``); ``publish`` and ``report`` get none. Requests of one
connection run concurrently.

A hash-based handshake of the standard library (``multiprocessing.connection``) was not used: it
is blocking and unpickles what it receives; this channel is asyncio and JSON only.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hmac
import logging
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from eventlog.embedded.writer import AppendSignal
from eventlog.port import (
    EventLog,
    LogError,
    LogReader,
    LogUnavailable,
    Record,
    RecordRefused,
    TopicPartition,
)
from live.port import LiveChannel, LiveStats, check_channel
from live.subscription import DEFAULT_QUEUE_SIZE, Subscription
from plugins_runtime.sql_executor import (
    ClickHousePluginQueries,
    PluginQueryFailed,
    prepare_query,
)
from plugins_runtime.sql_scope import PluginSqlRefused
from plugins_runtime.wire import HEADER, WireError, frame, frame_length, parse
from processors.plugin_hooks import HOOKS_GROUP
from processors.supervision import ProjectorHealth
from schemas.events import ACCOUNTS_TOPIC, HEARTBEATS_TOPIC

__all__ = [
    "ChannelClosed",
    "ChannelLive",
    "ChannelLogWrites",
    "ChannelQueries",
    "HookChannelClient",
    "HookChannelServer",
    "HookProcessProbe",
]

_log = logging.getLogger(__name__)
_AUTH_TIMEOUT_S = 5.0
# A plugin query answers within the engine's own limit (5 s by default); this only bounds a call
# to a server that stopped answering.
_CALL_TIMEOUT_S = 60.0
# At most one ``appended`` notice per this many seconds (a burst of group commits is one notice).
_APPENDED_EVERY_S = 0.002


class ChannelClosed(Exception):
    """The connection to the server is gone (or was refused)."""


async def _read_message(reader: asyncio.StreamReader) -> dict[str, Any]:
    header = await reader.readexactly(HEADER.size)
    return parse(await reader.readexactly(frame_length(header)))


def _records_out(records: Sequence[Record]) -> list[list[str]]:
    return [
        [r.topic, base64.b64encode(r.key).decode(), base64.b64encode(r.value).decode()]
        for r in records
    ]


def _records_in(rows: Any) -> list[Record]:
    if not isinstance(rows, list):
        raise WireError("records is a list")
    out = []
    for row in rows:
        if not (isinstance(row, list) and len(row) == 3 and all(isinstance(x, str) for x in row)):
            raise WireError("a record is [topic, key, value]")
        out.append(Record(row[0], base64.b64decode(row[1]), base64.b64decode(row[2])))
    return out


class HookProcessProbe:
    """The hook process as ``/readyz`` and ``/metrics`` see it, from its reports: its health,
    the lag of its consumer group, its counters (kept growing across restarts of the process)."""

    def __init__(self) -> None:
        self.health = ProjectorHealth("plugin-hooks")
        self._base: collections.Counter[str] = collections.Counter()
        self._current: collections.Counter[str] = collections.Counter()
        self._base_outcomes: collections.Counter[str] = collections.Counter()
        self._outcomes: collections.Counter[str] = collections.Counter()
        self._lag: dict[str, int] | None = None
        self._lag_records: int | None = None
        self._base_seconds = 0.0
        self._current_seconds = 0.0
        self.reports = 0

    @property
    def fired(self) -> int:
        return self._base["fired"] + self._current["fired"]

    @property
    def failed(self) -> int:
        return self._base["failed"] + self._current["failed"]

    @property
    def suspended(self) -> int:
        return self._base["suspended"] + self._current["suspended"]

    @property
    def outcomes(self) -> collections.Counter[str]:
        return self._base_outcomes + self._outcomes

    def update(self, report: Mapping[str, Any]) -> None:
        counts = report.get("counts", {})
        self._current = collections.Counter(
            {k: int(counts.get(k, 0)) for k in ("fired", "failed", "suspended", "batches")}
        )
        self._current["batch_records"] = int(counts.get("batch_records", 0))
        self._outcomes = collections.Counter(
            {str(k): int(v) for k, v in dict(report.get("outcomes", {})).items()}
        )
        health = self.health
        health.alive = bool(report.get("alive"))
        health.failure = report.get("failure")
        health.in_flight_since_ms = report.get("in_flight_since_ms")
        health.batches = self._base["batches"] + self._current["batches"]
        health.batch_records = self._base["batch_records"] + self._current["batch_records"]
        health.batch_seconds = self._base_seconds + float(counts.get("batch_seconds", 0.0))
        self._current_seconds = float(counts.get("batch_seconds", 0.0))
        lag = report.get("lag")
        self._lag = {str(k): int(v) for k, v in lag.items()} if isinstance(lag, dict) else None
        lag_records = report.get("lag_records")
        self._lag_records = int(lag_records) if isinstance(lag_records, int) else None
        self.reports += 1

    def starting(self) -> None:
        """The process is being started or runs but has not reported yet: alive (hooks never
        hold up ingest or reads, so a child still importing must not make the server unready);
        its first report, or its end, says more."""
        self.health.alive = True
        self.health.failure = None

    def lost(self, reason: str, *, restarting: bool) -> None:
        """The process ended: keep its counts, show why, count a restart if one follows."""
        self._base += self._current
        self._base_outcomes += self._outcomes
        self._base_seconds += self._current_seconds
        self._current, self._outcomes, self._current_seconds = (
            collections.Counter(),
            collections.Counter(),
            0.0,
        )
        self._lag = self._lag_records = None
        self.health.alive = False
        self.health.failure = reason
        self.health.in_flight_since_ms = None
        if restarting:
            self.health.restarts += 1

    async def lag_records(self) -> int:
        if self._lag_records is None:
            raise LogUnavailable("the hook process has not reported its lag")
        return self._lag_records

    async def lag_by_partition(self) -> dict[str, int]:
        if self._lag is None:
            raise LogUnavailable("the hook process has not reported its lag")
        return dict(self._lag)


class HookChannelServer:
    """The server's end: listens on ``path``, admits connections that present ``secret``."""

    def __init__(
        self,
        path: Path,
        secret: bytes,
        *,
        log: EventLog,
        queries: ClickHousePluginQueries,
        live: LiveChannel | None,
        probe: HookProcessProbe,
        appends: AppendSignal | None = None,
    ) -> None:
        self.path = path
        self._appends = appends
        self._secret = secret
        self._log = log
        self._queries = queries
        self._live = live
        self._probe = probe
        self._server: asyncio.Server | None = None
        self._readers: dict[str, LogReader] = {}
        self._reader_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.refused = 0
        self.connected = asyncio.Event()

    @property
    def secret(self) -> bytes:
        """This start's secret, for the child it starts."""
        return self._secret

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a server killed before it could clean up
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        finally:
            os.umask(old)
        self.path.chmod(0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for reader in self._readers.values():
            with contextlib.suppress(LogError):
                await reader.close()
        self._readers.clear()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                hello = await asyncio.wait_for(_read_message(reader), _AUTH_TIMEOUT_S)
            except (TimeoutError, asyncio.IncompleteReadError, WireError, OSError):
                hello = {}
            secret = hello.get("secret") if hello.get("op") == "hello" else None
            if not isinstance(secret, str) or not hmac.compare_digest(
                secret.encode(), self._secret.hex().encode()
            ):
                self.refused += 1
                _log.warning("hook channel: a connection without the secret was refused")
                with contextlib.suppress(OSError):
                    writer.write(frame({"op": "refused"}))
                    await writer.drain()
                return
            writer.write(frame({"op": "welcome"}))
            await writer.drain()
            self.connected.set()
            notices = asyncio.create_task(self._tell_appends(writer))
            try:
                while True:
                    try:
                        message = await _read_message(reader)
                    except (asyncio.IncompleteReadError, ConnectionError):
                        return
                    self._spawn(self._handle(message, writer))
            finally:
                notices.cancel()
        except WireError as exc:
            _log.error("hook channel: malformed frame, connection closed: %s", exc)
        finally:
            writer.close()

    async def _tell_appends(self, writer: asyncio.StreamWriter) -> None:
        if self._appends is None:
            return
        seen = self._appends.generation
        while not writer.is_closing():
            await self._appends.wait(seen, 1.0)
            now = self._appends.generation
            if now != seen:
                seen = now
                writer.write(frame({"op": "appended"}))
                await writer.drain()
                await asyncio.sleep(_APPENDED_EVERY_S)

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, message: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        op = message["op"]
        request_id = message.get("id")
        try:
            answer = await self._perform(op, message)
        except LogError as exc:
            kind = "refused" if isinstance(exc, RecordRefused) else "unavailable"
            answer = {"error": kind, "message": str(exc)}
        except PluginSqlRefused as exc:
            answer = {"error": "sql_refused", "code": exc.code, "message": exc.message}
        except PluginQueryFailed as exc:
            answer = {"error": "query_failed", "code": exc.code, "message": exc.message}
        except (WireError, ValueError, KeyError, TypeError) as exc:
            answer = {"error": "bad_request", "message": str(exc)[:300]}
        except Exception as exc:
            _log.exception("hook channel: %s failed", op)
            answer = {"error": "unavailable", "message": type(exc).__name__}
        if request_id is not None:
            answer["id"] = request_id
            answer["op"] = "answer"
            with contextlib.suppress(OSError, RuntimeError):
                writer.write(frame(answer))
                await writer.drain()

    async def _perform(self, op: str, message: dict[str, Any]) -> dict[str, Any]:
        if op == "append":
            await self._log.append(_records_in(message["records"]))
            return {"ok": True}
        if op == "commit":
            group = message["group"]
            if group != HOOKS_GROUP:
                raise ValueError(f"group {group!r} is not the hook processor's")
            offsets = {TopicPartition(str(t), int(p)): int(o) for t, p, o in message["offsets"]}
            await (await self._reader(group)).commit(offsets)
            return {"ok": True}
        if op == "query":
            sql, parameters = message["sql"], message["parameters"]
            if not isinstance(sql, str) or not isinstance(parameters, dict):
                raise ValueError("query takes sql (text) and parameters (an object)")
            rows = await asyncio.to_thread(self._queries.run_scoped, sql, parameters)
            return {"ok": True, "rows": rows}
        if op == "publish":
            channel = check_channel(str(message["channel"]))
            if self._live is not None and isinstance(message.get("message"), dict):
                await self._live.publish(channel, message["message"])
            return {"ok": True}
        if op == "report":
            self._probe.update(message)
            return {"ok": True}
        raise ValueError(f"unknown op {op!r}")

    async def _reader(self, group: str) -> LogReader:
        async with self._reader_lock:
            reader = self._readers.get(group)
            if reader is None:
                reader = self._log.reader([HEARTBEATS_TOPIC, ACCOUNTS_TOPIC], group=group)
                await reader.start()
                self._readers[group] = reader
            return reader


class HookChannelClient:
    """The hook process's end: one connection, requests multiplexed by id."""

    def __init__(self, path: Path, secret: bytes) -> None:
        self._path = path
        self._secret = secret
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._reading: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = asyncio.Event()
        # Called when the server says the log stored records.
        self.on_appended: Callable[[], None] | None = None

    async def connect(self) -> None:
        self._loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_unix_connection(str(self._path))
        writer.write(frame({"op": "hello", "secret": self._secret.hex()}))
        await writer.drain()
        try:
            answer = await asyncio.wait_for(_read_message(reader), _AUTH_TIMEOUT_S)
        except (TimeoutError, asyncio.IncompleteReadError, WireError) as exc:
            writer.close()
            raise ChannelClosed("the server did not answer the handshake") from exc
        if answer.get("op") != "welcome":
            writer.close()
            raise ChannelClosed("the server refused the hook channel's secret")
        self._writer = writer
        self._reading = asyncio.create_task(self._read(reader), name="hook-channel")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = await _read_message(reader)
                if message["op"] == "appended":
                    if self.on_appended is not None:
                        self.on_appended()
                    continue
                future = self._pending.pop(int(message.get("id", -1)), None)
                if future is not None and not future.done():
                    future.set_result(message)
        except (asyncio.IncompleteReadError, ConnectionError, WireError, OSError):
            pass
        finally:
            self.closed.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ChannelClosed("the server closed the hook channel"))
            self._pending.clear()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
        self.closed.set()

    def _write(self, message: dict[str, Any]) -> None:
        if self._writer is None or self.closed.is_set():
            raise ChannelClosed("the hook channel is closed")
        self._writer.write(frame(message))

    async def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send a request and return the server's answer (``ok`` or ``error``)."""
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self._write({"op": op, "id": request_id, **fields})
            assert self._writer is not None
            await self._writer.drain()
            return await asyncio.wait_for(future, _CALL_TIMEOUT_S)
        except (ConnectionError, OSError) as exc:
            raise ChannelClosed(f"the hook channel failed: {exc}") from exc
        finally:
            self._pending.pop(request_id, None)

    def send(self, op: str, **fields: Any) -> None:
        """Send a message that gets no answer (``publish``, ``report``); dropped if closed."""
        with contextlib.suppress(ChannelClosed, OSError, RuntimeError):
            self._write({"op": op, **fields})

    def call_from_thread(self, op: str, **fields: Any) -> dict[str, Any]:
        """:meth:`call` from a worker thread (blocks it until the answer)."""
        assert self._loop is not None, "connect() first"
        return asyncio.run_coroutine_threadsafe(self.call(op, **fields), self._loop).result()

    def send_from_thread(self, op: str, **fields: Any) -> None:
        assert self._loop is not None, "connect() first"
        self._loop.call_soon_threadsafe(lambda: self.send(op, **fields))


class ChannelLogWrites:
    """:class:`eventlog.embedded.follower.LogWrites` through the server."""

    def __init__(self, client: HookChannelClient) -> None:
        self._client = client

    async def append(self, records: Sequence[Record]) -> None:
        await self._call("append", records=_records_out(records))

    async def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        rows = [[tp.topic, tp.partition, offset] for tp, offset in offsets.items()]
        await self._call("commit", group=group, offsets=rows)

    async def _call(self, op: str, **fields: Any) -> None:
        try:
            answer = await self._client.call(op, **fields)
        except (ChannelClosed, TimeoutError) as exc:
            raise LogUnavailable(f"the server did not take the {op}: {exc}") from exc
        error = answer.get("error")
        if error == "refused":
            raise RecordRefused(str(answer.get("message")))
        if error is not None:
            raise LogUnavailable(f"the server did not take the {op}: {answer.get('message')}")


class ChannelQueries:
    """:class:`plugins_runtime.sql_executor.PluginQueries` through the server: scoped here, run
    there (blocking, from a worker thread, like the engine's own client)."""

    def __init__(self, client: HookChannelClient, database: str) -> None:
        self._client = client
        self._database = database

    def query(
        self,
        user_id: str,
        sql: str,
        params: Sequence[object] = (),
        *,
        host_rows: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    ) -> list[dict[str, Any]]:
        scoped, parameters = prepare_query(
            user_id, sql, params, host_rows=host_rows, database=self._database
        )
        try:
            answer = self._client.call_from_thread("query", sql=scoped, parameters=parameters)
        except (ChannelClosed, TimeoutError) as exc:
            raise PluginQueryFailed("unavailable", "the database is unavailable, retry") from exc
        error = answer.get("error")
        if error == "sql_refused":
            raise PluginSqlRefused(str(answer.get("code")), str(answer.get("message")))
        if error == "query_failed":
            raise PluginQueryFailed(str(answer.get("code")), str(answer.get("message")))
        if error is not None:
            raise PluginQueryFailed("unavailable", "the database is unavailable, retry")
        rows = answer.get("rows")
        if not isinstance(rows, list):
            raise PluginQueryFailed("unavailable", "the database answered nothing")
        return rows

    def close(self) -> None:
        return None


class ChannelLive:
    """A :class:`live.port.LiveChannel` that publishes through the server's live channel (the
    hook process only publishes: nobody subscribes in it)."""

    def __init__(self, client: HookChannelClient) -> None:
        self._client = client
        self._stats = LiveStats()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def publish(self, channel: str, message: Mapping[str, Any]) -> None:
        self._client.send("publish", channel=channel, message=dict(message))
        self._stats.published += 1

    def publish_threadsafe(self, channel: str, message: Mapping[str, Any]) -> None:
        self._client.send_from_thread("publish", channel=channel, message=dict(message))
        self._stats.published += 1

    async def subscribe(
        self, channel: str, *, queue_size: int = DEFAULT_QUEUE_SIZE
    ) -> Subscription:
        raise NotImplementedError("the hook process only publishes")

    def listened(self, channels: Collection[str]) -> set[str]:
        return set(channels)  # publishing to nobody is harmless; the server drops it

    def stats(self) -> LiveStats:
        return self._stats


def report_message(
    health: ProjectorHealth,
    counts: Mapping[str, int | float],
    outcomes: Mapping[str, int],
    lag: dict[str, int] | None,
    lag_records: int | None,
) -> dict[str, Any]:
    """What the hook process reports, read by :meth:`HookProcessProbe.update`."""
    return {
        "alive": health.alive,
        "failure": health.failure,
        "in_flight_since_ms": health.in_flight_since_ms,
        "counts": dict(counts),
        "outcomes": dict(outcomes),
        "lag": lag,
        "lag_records": lag_records,
    }
