"""Erasing a user's data from the embedded log, once the projections have been erased.

A :class:`schemas.events.UserDataErased` is projected like any other event (the projector removes
the rows from ClickHouse). On the embedded log the records themselves are then rewritten, so
the data is gone from the disk too and a replay cannot bring it back:

* a range erasure removes the user's heartbeats and AI records (:mod:`schemas.ai`) of that range
  from the records before the erasure event (a record left empty is deleted); the event itself
  stays, so a replay applies it again, to nothing;
* a full erasure (the account was deleted) deletes every record of the user on the heartbeats
  topic, the erasure event included, and on the accounts topic every record that belongs to or
  names the user (see :mod:`accounts.erasure`); later appends of the user's records are refused.
  The user's dead letters (:mod:`processors.deadletters`, keyed like the records they hold) are
  deleted too.

Kafka's log cannot be rewritten: in the distributed mode the events stay on the brokers until
the topics' retention removes them (``docs/accounts.md`` explains what that means).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from pydantic import ValidationError

from accounts.erasure import account_erasure
from eventlog.port import Delivered, RewritableLog
from processors.deadletters import DEAD_LETTERS_TOPIC
from schemas.events import (
    ACCOUNTS_TOPIC,
    HEARTBEATS_TOPIC,
    AiActivityReceived,
    HeartbeatsReceived,
    UserDataErased,
    decode_event,
    encode_event,
)
from schemas.languages import with_canonical_language

_log = logging.getLogger(__name__)


def heartbeats_erasure(
    records: Sequence[Delivered], erasure: UserDataErased
) -> dict[tuple[int, int], bytes | None]:
    """Pure: the rewrite of the erasing user's heartbeat records that ``erasure`` asks for.

    ``records`` are the user's records of the heartbeats topic in log order. A full erasure
    deletes them all. A range erasure only touches the records before the erasure event (what
    came after it is activity sent later, which stays): each ``HeartbeatsReceived`` loses the
    heartbeats in the range, and is deleted when none is left.
    """
    if erasure.everything:
        return {(record.partition, record.offset): None for record in records}
    plan: dict[tuple[int, int], bytes | None] = {}
    for record in records:
        try:
            event = decode_event(record.value)
        except ValidationError:
            _log.error("erasure skips an undecodable record at offset %s", record.offset)
            continue
        if isinstance(event, UserDataErased) and event.event_id == erasure.event_id:
            break
        if event.user_id != erasure.user_id:
            continue
        position = (record.partition, record.offset)
        if isinstance(event, AiActivityReceived):
            left = tuple(item for item in event.records if not erasure.covers(item.time))
            if len(left) < len(event.records):
                plan[position] = (
                    encode_event(event.model_copy(update={"records": left})) if left else None
                )
            continue
        if not isinstance(event, HeartbeatsReceived):
            continue
        # Canonical before re-encoding: a record from before `language_raw` existed would
        # otherwise be written back with it null, and the name its client sent be lost.
        kept = tuple(
            with_canonical_language(hb) for hb in event.heartbeats if not erasure.covers(hb.time)
        )
        if len(kept) == len(event.heartbeats):
            continue
        plan[position] = (
            encode_event(event.model_copy(update={"heartbeats": kept})) if kept else None
        )
    return plan


async def erase_from_log(log: RewritableLog, erasure: UserDataErased) -> int:
    """Rewrite the embedded log as ``erasure`` asks; returns how many records changed."""
    key = erasure.user_id.encode()
    changed = await log.rewrite(
        HEARTBEATS_TOPIC,
        partial(heartbeats_erasure, erasure=erasure),
        key=key,
        refuse=key if erasure.everything else None,
    )
    if erasure.everything:
        # Erased and closed to the account in one transaction: nothing more of it (a request
        # authenticated just before the deletion, a key's last-use note) can be appended after.
        changed += await log.rewrite(
            ACCOUNTS_TOPIC, partial(account_erasure, user_id=erasure.user_id), refuse=key
        )
        changed += await log.rewrite(DEAD_LETTERS_TOPIC, _delete_all, key=key)
    return changed


def _delete_all(records: Sequence[Delivered]) -> dict[tuple[int, int], bytes | None]:
    return {(record.partition, record.offset): None for record in records}
