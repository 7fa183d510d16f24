"""A user's ingest rules applied to the heartbeats of one request (pure).

Ignore patterns are globs (``*``, ``?``, ``[...]``, any case) matched against a heartbeat's
entity and its project: a match drops the heartbeat before it is recorded (nothing of it is
kept; the account counts it). Language mappings set the language of a file whose entity ends
with the extension (``.vue`` -> ``Vue``): the heartbeat is recorded as if its client had sent
that language (its id follows, as for any heartbeat), ``language_raw`` keeps what was sent.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from functools import lru_cache

from schemas.heartbeat import Heartbeat, heartbeat_event_id
from schemas.languages import stored_language


@lru_cache(maxsize=256)
def _matcher(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(fnmatch.translate(p.lower()) for p in patterns))


def _extension(entity: str) -> str:
    name = entity.replace("\\", "/").rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def screen(
    heartbeats: Sequence[Heartbeat],
    ignore: tuple[str, ...],
    mappings: tuple[tuple[str, str], ...],
) -> tuple[list[Heartbeat], int]:
    """The heartbeats to record (mappings applied) and how many the ignore patterns dropped."""
    if not ignore and not mappings:
        return list(heartbeats), 0
    matcher = _matcher(ignore)
    languages = dict(mappings)
    kept: list[Heartbeat] = []
    for heartbeat in heartbeats:
        if matcher is not None and (
            matcher.match(heartbeat.entity.lower())
            or (heartbeat.project is not None and matcher.match(heartbeat.project.lower()))
        ):
            continue
        mapped = languages.get(_extension(heartbeat.entity)) if heartbeat.type == "file" else None
        if mapped is not None and stored_language(mapped) != heartbeat.language:
            language = stored_language(mapped)
            heartbeat = heartbeat.model_copy(
                update={
                    "language": language,
                    "event_id": heartbeat_event_id(
                        user_id=heartbeat.user_id,
                        entity=heartbeat.entity,
                        type=heartbeat.type,
                        category=heartbeat.category,
                        project=heartbeat.project,
                        branch=heartbeat.branch,
                        language=language,
                        is_write=heartbeat.is_write,
                        time=heartbeat.time,
                    ),
                }
            )
        kept.append(heartbeat)
    return kept, len(heartbeats) - len(kept)
