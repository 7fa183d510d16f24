"""Rebuilding every projection from the log.

Empties the projection tables, then reads ``codetrackr.heartbeats`` and ``codetrackr.accounts``
from the beginning with a fresh consumer group up to the end offsets it saw when it started,
through the same projector as the live run, so the rebuilt tables equal the live ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from eventlog.port import EventLog
from processors.handlers import HeartbeatProjector
from processors.projectors.batches import BatchResult
from processors.runner import ProjectionRunner
from schemas.events import ACCOUNTS_TOPIC, HEARTBEATS_TOPIC


async def replay(
    log: EventLog,
    projector: HeartbeatProjector,
    truncate: Callable[[], None],
    *,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 5000,
) -> int:
    """Rebuild projections; ``progress(done_records, total_records)``. Returns records read."""
    ends = {
        **await log.end_offsets(HEARTBEATS_TOPIC),
        **await log.end_offsets(ACCOUNTS_TOPIC),
    }
    total = sum(ends.values())
    truncate()
    done = 0

    def counted(n: int, _: BatchResult) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    runner = ProjectionRunner(
        log,
        projector,
        group=f"codetrackr-replay-{uuid.uuid4().hex}",
        batch_size=batch_size,
        wait_s=0.2,
        on_batch=counted,
    )
    await runner.start()
    try:
        if total:
            await runner.seek_to_beginning()
            await runner.run_to(ends)
    finally:
        await runner.close()
    if progress is not None:
        progress(done, total)
    return done
