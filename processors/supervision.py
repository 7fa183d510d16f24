"""How a projector is supervised: which failures are waited out, which records are dead-lettered.

One policy for both runners (the in-process :class:`processors.runner.ProjectionRunner` and the
faust worker), so a failure is handled the same way whatever the deployment:

* **Transient** failures (:class:`~projections.ports.ProjectionStoreUnavailable`,
  :class:`~eventlog.port.LogUnavailable`: the engine or the log cannot be reached now) are not the
  records' fault. The batch is kept and retried with exponential backoff, for as long as it
  takes; nothing is skipped and nothing is dead-lettered.
* **Any other** exception may be a record the projector can never handle (a "poison" record). The
  failing batch is split in halves and each half handled on its own, recursively, so the records
  around the culprit are still projected; a single record that fails ``max_attempts`` times in a
  row is handed to the dead-letter sink (``processors.deadletters``), counted, and processing
  goes on past it. Handling a sub-batch again is safe: every projection is idempotent.
* A store that fails every record (e.g. a schema the code does not expect) would otherwise empty
  the log into the dead letters. So after ``max_consecutive_dead_letters`` dead letters without a
  single success between them, failures are treated as transient instead: the supervisor waits
  and retries the same record until something succeeds again (and says so in the log and in
  :class:`ProjectorHealth`).

:class:`ProjectorHealth` is what a runner tells ``/readyz``: whether its task is alive, the
last failure, the records in flight (their age is the lag in seconds) and the dead letters
written. The clock and the sleep are injected so tests never wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from eventlog.port import Delivered, LogUnavailable
from projections.ports import ProjectionStoreUnavailable

_log = logging.getLogger(__name__)

R = TypeVar("R")
Sleep = Callable[[float], Awaitable[None]]
# Hands a record that failed for good to the dead letters: (record, last error, attempts).
DeadLetterSink = Callable[[Delivered, BaseException, int], Awaitable[None]]

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ProjectionStoreUnavailable, LogUnavailable)


@dataclass(frozen=True, slots=True)
class SupervisionPolicy:
    """The numbers of the policy (settings ``CODETRACKR_PROJECTOR_*``, docs/operations.md)."""

    max_attempts: int = 3
    initial_delay_s: float = 0.5
    max_delay_s: float = 10.0
    max_consecutive_dead_letters: int = 10
    transient: tuple[type[BaseException], ...] = TRANSIENT_ERRORS

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_consecutive_dead_letters < 1:
            raise ValueError("max_attempts and max_consecutive_dead_letters must be at least 1")

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, self.transient)

    def delay(self, failures: int) -> float:
        """Pure: the wait before retry number ``failures`` (1, 2, ...): doubling, capped."""
        return float(min(self.initial_delay_s * 2 ** max(failures - 1, 0), self.max_delay_s))


def describe(exc: BaseException) -> str:
    """``ExceptionType: message`` (what dead letters and ``/readyz`` carry; no traceback)."""
    return "".join(traceback.format_exception_only(exc)).strip()


@dataclass
class ProjectorHealth:
    """What one projector's supervision reports to the health endpoints (one event loop)."""

    name: str
    alive: bool = False
    # Why the task is not alive, or the failure it is waiting out now (None when all is well).
    failure: str | None = None
    dead_letters: int = 0
    # The oldest record timestamp (ms) of the batch being handled; None while idle.
    in_flight_since_ms: int | None = None
    restarts: int = 0
    started_at: float = field(default_factory=time.monotonic)
    # Batches handled to the end (projected, or their failing records dead-lettered): how many,
    # their records, and the seconds they took, retries included (``/metrics``).
    batches: int = 0
    batch_records: int = 0
    batch_seconds: float = 0.0

    def lag_seconds(self, now_ms: int) -> float:
        if self.in_flight_since_ms is None:
            return 0.0
        return max(0.0, (now_ms - self.in_flight_since_ms) / 1000)


async def restarting(
    stop: asyncio.Event,
    *,
    started: Callable[[], bool],
    start: Callable[[], Awaitable[None]],
    run: Callable[[asyncio.Event], Awaitable[None]],
    close_reader: Callable[[], Awaitable[None]],
    health: ProjectorHealth,
    policy: SupervisionPolicy,
    sleep: Sleep,
    what: str,
) -> None:
    """``run(stop)`` until ``stop`` is set, started again with a fresh reader whenever it raises:
    the failure is logged with its traceback and shown in ``health`` at once, and the restarts
    back off further while it keeps dying soon after each one. What was fetched and not
    committed is read again (handling is idempotent or at least once)."""
    failures = 0
    while not stop.is_set():
        began = time.monotonic()
        try:
            if not started():
                await start()
            health.alive = True
            health.failure = None
            await run(stop)
        except Exception as exc:
            failures = failures + 1 if time.monotonic() - began < 60 else 1
            health.alive = False
            health.failure = f"{what} stopped: {describe(exc)}"
            health.restarts += 1
            _log.exception("the %s died; restarting it with a fresh reader", what)
            await close_reader()
            await sleep(policy.delay(failures))
    health.alive = False


class Supervisor(Generic[R]):
    """Runs a batch handler under the policy; see the module docs.

    ``handle`` is awaited with a non-empty slice of the records, in log order, and may be called
    again with the same records or with parts of them. ``run`` returns the results of the calls
    that succeeded, in order; it raises only ``CancelledError`` (and whatever ``dead_letter``
    raises that is not transient).
    """

    def __init__(
        self,
        policy: SupervisionPolicy,
        dead_letter: DeadLetterSink,
        health: ProjectorHealth,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._policy = policy
        self._dead_letter = dead_letter
        self._health = health
        self._sleep = sleep
        self._consecutive_dead_letters = 0

    async def run(
        self, records: Sequence[Delivered], handle: Callable[[Sequence[Delivered]], Awaitable[R]]
    ) -> list[R]:
        results: list[R] = []
        if records:
            health = self._health
            health.in_flight_since_ms = min(r.timestamp_ms for r in records)
            started = time.perf_counter()
            try:
                await self._run(records, handle, results)
            finally:
                health.in_flight_since_ms = None
            health.batches += 1
            health.batch_records += len(records)
            health.batch_seconds += time.perf_counter() - started
        return results

    async def _run(
        self,
        records: Sequence[Delivered],
        handle: Callable[[Sequence[Delivered]], Awaitable[R]],
        results: list[R],
    ) -> None:
        failures = transient = 0
        while True:
            try:
                result = await handle(records)
            except Exception as exc:
                if self._policy.is_transient(exc) or self._suspect_store():
                    transient += 1
                    await self._wait(transient, "retrying the batch", exc)
                    continue
                failures += 1
                if len(records) > 1:
                    # Split to find the record at fault: its neighbours must not share its fate.
                    _log.warning(
                        "%s: a batch of %d records failed (%s); handling it in halves",
                        self._health.name,
                        len(records),
                        describe(exc),
                    )
                    middle = len(records) // 2
                    await self._run(records[:middle], handle, results)
                    await self._run(records[middle:], handle, results)
                    return
                if failures >= self._policy.max_attempts:
                    await self._send_to_dead_letters(records[0], exc, failures)
                    return
                await self._wait(failures, f"retrying {_position(records[0])}", exc)
                continue
            self._consecutive_dead_letters = 0
            self._health.failure = None
            results.append(result)
            return

    def _suspect_store(self) -> bool:
        return self._consecutive_dead_letters >= self._policy.max_consecutive_dead_letters

    async def _wait(self, failures: int, what: str, exc: BaseException) -> None:
        delay = self._policy.delay(failures)
        if self._suspect_store() and not self._policy.is_transient(exc):
            what = (
                f"{self._consecutive_dead_letters} records in a row were dead-lettered, so the "
                f"fault looks like the store's, not the records': {what} until one succeeds"
            )
            _log.error("%s: %s in %.1fs: %s", self._health.name, what, delay, describe(exc))
        else:
            _log.warning("%s: %s in %.1fs: %s", self._health.name, what, delay, describe(exc))
        self._health.failure = describe(exc)
        await self._sleep(delay)

    async def _send_to_dead_letters(
        self, record: Delivered, exc: BaseException, attempts: int
    ) -> None:
        failures = 0
        while True:
            try:
                await self._dead_letter(record, exc, attempts)
                break
            except Exception as sink_error:
                if not self._policy.is_transient(sink_error):
                    raise
                failures += 1
                await self._wait(failures, "retrying the dead letter", sink_error)
        self._consecutive_dead_letters += 1
        self._health.dead_letters += 1
        _log.error(
            "%s: dead-lettered %s after %d failed attempts: %s",
            self._health.name,
            _position(record),
            attempts,
            describe(exc),
            exc_info=exc,
        )


def _position(record: Delivered) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"
