"""A plugin's accepted write (``plugins_runtime.sql_writes`` intents) recorded as an event.

Writes are events on the log like every other change, so a replay rebuilds plugin state too:

* :class:`SettingsWrite` -> :class:`PluginSettingsChanged`; the fold applies its mode against the
  row as the log's order finds it. A plain ``INSERT`` of a row that exists is refused like
  Postgres' unique violation; the other modes succeed (``UPDATE`` of no row changes nothing).
* :class:`ProfileWrite` -> :class:`ProfileUpdated`, after the same checks the profile form makes
  (``validate_profile``, injected by the composition root, which owns those rules).
* :class:`KeyRevoke` -> :class:`ApiKeyRevoked` of one of the caller's own keys (another user's
  key id, or an unknown one, deletes nothing, as a ``DELETE`` matching no row).

A write answers an empty row list, as a statement without ``RETURNING`` does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from accounts.directory import AccountDirectory, new_event_id
from plugins_runtime.host import HostCallError
from plugins_runtime.sql_writes import KeyRevoke, ProfileWrite, SettingsWrite, WriteIntent
from schemas.events import ApiKeyRevoked, PluginSettingsChanged, ProfileUpdated

# Checks profile changes like the profile form does; returns them (normalized) or raises
# ValueError with a message for the plugin's author.
ProfileValidator = Callable[[Mapping[str, Any]], dict[str, Any]]


async def record_write(
    directory: AccountDirectory,
    plugin: str,
    user_id: str,
    intent: WriteIntent,
    *,
    validate_profile: ProfileValidator | None = None,
    now: Callable[[], float] = time.time,
) -> None:
    """Append the event ``intent`` stands for; raises :class:`HostCallError` when refused and
    :class:`eventlog.port.LogUnavailable` when the log cannot take it."""
    if isinstance(intent, SettingsWrite):
        await _settings(directory, plugin, user_id, intent, now())
    elif isinstance(intent, ProfileWrite):
        await _profile(directory, user_id, intent, validate_profile, now())
    else:
        await _revoke(directory, user_id, intent, now())


async def _settings(
    directory: AccountDirectory, plugin: str, user_id: str, intent: SettingsWrite, at: float
) -> None:
    text = None if intent.settings is None else json.dumps(intent.settings, separators=(",", ":"))
    event = PluginSettingsChanged(
        event_id=new_event_id(),
        user_id=user_id,
        occurred_at=at,
        name=plugin,
        mode=intent.mode,
        settings=text,
    )
    if await directory.record(event) or intent.mode == "delete":
        return  # a DELETE of no row deletes nothing
    if directory.plugins.install(user_id, plugin) is None:
        raise HostCallError(f"plugin_settings: {plugin} is not installed for this user")
    raise HostCallError(
        "duplicate key value violates unique constraint on plugin_settings (user_id, plugin):"
        " use ON CONFLICT (user_id, plugin) DO NOTHING or DO UPDATE"
    )


async def _profile(
    directory: AccountDirectory,
    user_id: str,
    intent: ProfileWrite,
    validate: ProfileValidator | None,
    at: float,
) -> None:
    if validate is None:
        raise HostCallError("users: profile changes are not enabled on this server")
    try:
        fields = validate(intent.fields)
    except ValueError as exc:
        raise HostCallError(f"users: {exc}") from None
    event = ProfileUpdated(event_id=new_event_id(), user_id=user_id, occurred_at=at, **fields)
    if not await directory.record(event):
        raise HostCallError("users: the profile change was refused")


async def _revoke(directory: AccountDirectory, user_id: str, intent: KeyRevoke, at: float) -> None:
    key = directory.state.keys_by_id.get(intent.key_id)
    if key is None or key.user_id != user_id:
        return  # matches no row of the caller's
    event = ApiKeyRevoked(
        event_id=new_event_id(), user_id=user_id, occurred_at=at, key_id=intent.key_id
    )
    await directory.record(event)
