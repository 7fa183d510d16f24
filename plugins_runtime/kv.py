"""The plugin key-value namespace behind ``ctx.redis.*``: the port and its pure rules.

Every key a plugin passes lives under ``plugin:<plugin-name>:<user-id>:<key>``
(:func:`namespaced_key`). Plugin names are lowercase kebab-case and user ids hold neither ``:``
nor glob characters, so the first three ``:``-separated fields of a stored key always name its
namespace, whatever the plugin's own key contains: no namespace can reach into another.

What plugins keep here is user data: adapters keep it durably, and the host exports it with the
user's data (:meth:`PluginKeyValue.dump_user`) and deletes it with the account
(:meth:`PluginKeyValue.delete_user`) or the plugin's uninstall
(:meth:`PluginKeyValue.delete_plugin_user`). Adapters: :mod:`plugins_runtime.kv_sqlite`
(embedded, one SQLite file) and :mod:`plugins_runtime.kv_redis` (Redis); pick one with
:func:`plugins_runtime.kv_factory.open_plugin_kv`.

Errors: a request the plugin got wrong (a key or value out of bounds, ``incr`` on a value that is
not an integer) raises :class:`~plugins_runtime.host.HostCallError`, whose message reaches the
plugin; a plugin name or user id that is not valid is the host's bug and raises ``ValueError``; a
store that cannot be reached raises :class:`KeyValueUnavailable` (retry the hook later, answer an
RPC with 503).
"""

from __future__ import annotations

import re
from typing import Protocol

from plugins_runtime.host import MAX_KEY_CHARS, HostCallError

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_KEY_CHARS",
    "MAX_MARKER_CHARS",
    "MAX_VALUE_BYTES",
    "KeyValueUnavailable",
    "PluginKeyValue",
    "check_key",
    "check_marker",
    "check_plugin_name",
    "check_user_id",
    "check_value",
    "incremented",
    "marker_key",
    "namespace_prefix",
    "namespaced_key",
]

# A value is a plugin's small state (a counter, a timestamp, a JSON blob), not a file store.
MAX_VALUE_BYTES = 64 * 1024
MAX_PLUGIN_NAME_CHARS = 64
MAX_USER_ID_CHARS = 128
MAX_MARKER_CHARS = 512
# Redis counters are signed 64-bit; the embedded adapter keeps the same range.
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

PLUGIN_PREFIX = "plugin:"
MARKER_PREFIX = "host:"

_PLUGIN_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# Letters, digits, '.', '_' and '-': no ':' (the namespace separator), no glob character
# (* ? [ ] \), no whitespace or control character.
_USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# What Redis's INCR accepts as an integer: an optional '-', no '+', no leading zero, no "-0", no
# spaces.
_INTEGER = re.compile(r"0|-?[1-9][0-9]*")


class KeyValueUnavailable(Exception):
    """The store cannot be reached (Redis down, the SQLite file unusable, the store closed).

    Nothing was or may have been done; callers retry the hook later or answer 503. The message is
    for operators, not for plugins.
    """


def check_plugin_name(plugin: str) -> str:
    """``plugin`` if it is lowercase kebab-case (``my-plugin``), at most 64 characters."""
    if len(plugin) > MAX_PLUGIN_NAME_CHARS or not _PLUGIN_NAME.fullmatch(plugin):
        raise ValueError(f"plugin name {plugin!r} is not lowercase kebab-case")
    return plugin


def check_user_id(user_id: str) -> str:
    """``user_id`` if it holds only letters, digits, '.', '_', '-' (at most 128 characters)."""
    if len(user_id) > MAX_USER_ID_CHARS or not _USER_ID.fullmatch(user_id):
        raise ValueError(f"user id {user_id!r} is not valid in a key-value namespace")
    return user_id


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from JS
        return False
    return True


def check_key(key: str) -> str:
    """A plugin's key: a non-empty string of at most 1,024 characters, any characters."""
    if not isinstance(key, str) or not key:
        raise HostCallError("ctx.redis: key must be a non-empty string")
    if len(key) > MAX_KEY_CHARS:
        raise HostCallError(f"ctx.redis: key longer than {MAX_KEY_CHARS} characters")
    if not _encodable(key):
        raise HostCallError("ctx.redis: key is not valid Unicode (a lone surrogate)")
    return key


def check_value(value: str) -> str:
    """A value to store: a string of at most 64 KiB in UTF-8."""
    if not isinstance(value, str):
        raise HostCallError("ctx.redis.set: value must be a string")
    if not _encodable(value):
        raise HostCallError("ctx.redis.set: value is not valid Unicode (a lone surrogate)")
    size = len(value.encode("utf-8"))
    if size > MAX_VALUE_BYTES:
        raise HostCallError(
            f"ctx.redis.set: value is {size} bytes, more than the {MAX_VALUE_BYTES} allowed"
        )
    return value


def check_marker(marker: str) -> str:
    if not marker or len(marker) > MAX_MARKER_CHARS or not _encodable(marker):
        raise ValueError(f"marker {marker[:80]!r} must be 1 to {MAX_MARKER_CHARS} characters")
    return marker


def namespace_prefix(plugin: str, user_id: str) -> str:
    """``plugin:<plugin>:<user_id>:``, after checking both parts."""
    return f"{PLUGIN_PREFIX}{check_plugin_name(plugin)}:{check_user_id(user_id)}:"


def namespaced_key(plugin: str, user_id: str, key: str) -> str:
    """``plugin:<plugin>:<user_id>:<key>``: where ``key`` of this plugin and user is stored."""
    return namespace_prefix(plugin, user_id) + check_key(key)


def marker_key(marker: str) -> str:
    """``host:<marker>``: outside every plugin namespace (those all start with ``plugin:``)."""
    return MARKER_PREFIX + check_marker(marker)


def incremented(key: str, current: str | None) -> int:
    """The value ``incr`` stores after ``current`` (a missing key counts from 0), as Redis does."""
    if current is None:
        return 1
    if len(current) > 20 or not _INTEGER.fullmatch(current):
        raise HostCallError(f"ctx.redis.incr: the value of {key!r} is not an integer")
    value = int(current)
    if not INT64_MIN <= value <= INT64_MAX:
        raise HostCallError(f"ctx.redis.incr: the value of {key!r} is not an integer")
    if value == INT64_MAX:
        raise HostCallError(f"ctx.redis.incr: incrementing {key!r} would overflow")
    return value + 1


class PluginKeyValue(Protocol):
    """The durable key-value namespace of plugins, per plugin and user.

    ``key`` is the plugin's own key, without the prefix; adapters store it under
    :func:`namespaced_key`. Every method may raise :class:`KeyValueUnavailable`; ``get``, ``set``,
    ``delete`` and ``incr`` raise :class:`HostCallError` for a key or value out of bounds.
    An answered ``set``, ``incr`` or ``delete`` is durable (see each adapter for how).
    """

    async def start(self) -> None:
        """Open the store (the embedded adapter creates its file); call once before the rest."""
        ...

    async def close(self) -> None:
        """Release the store; later calls raise :class:`KeyValueUnavailable`."""
        ...

    async def get(self, plugin: str, user_id: str, key: str) -> str | None: ...

    async def set(self, plugin: str, user_id: str, key: str, value: str) -> None:
        """Store ``value`` (at most :data:`MAX_VALUE_BYTES` in UTF-8), replacing any other."""
        ...

    async def delete(self, plugin: str, user_id: str, key: str) -> None:
        """Remove ``key``; nothing happens when it is absent."""
        ...

    async def incr(self, plugin: str, user_id: str, key: str) -> int:
        """Add one atomically and return the new value; a missing key counts from 0. A value that
        is not a 64-bit integer raises ``HostCallError("... is not an integer")``."""
        ...

    async def dump_user(self, user_id: str) -> dict[str, dict[str, str]]:
        """Everything stored for ``user_id``: plugin name -> {key without prefix: value}."""
        ...

    async def delete_user(self, user_id: str) -> int:
        """Delete every plugin's keys of ``user_id`` (account deletion); returns how many."""
        ...

    async def delete_plugin_user(self, plugin: str, user_id: str) -> int:
        """Delete ``plugin``'s keys of ``user_id`` (uninstall); returns how many."""
        ...

    async def mark_once(self, marker: str) -> bool:
        """Set the host-owned marker ``host:<marker>`` if absent; True when this call set it."""
        ...

    async def unmark(self, marker: str) -> None:
        """Remove the marker, so the next :meth:`mark_once` returns True again."""
        ...
