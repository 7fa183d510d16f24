"""The plugin key-value namespace's pure rules (``plugins_runtime.kv``) and the adapter choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugins_runtime.host import HostCallError
from plugins_runtime.kv import (
    check_plugin_name,
    check_user_id,
    incremented,
    marker_key,
    namespaced_key,
)
from plugins_runtime.kv_factory import open_plugin_kv
from plugins_runtime.kv_redis import RedisPluginKeyValue, escape_glob
from plugins_runtime.kv_sqlite import SqlitePluginKeyValue

plugin_names = st.from_regex(r"[a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,3}", fullmatch=True)
user_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)


def test_the_seeds_layout() -> None:
    assert (
        namespaced_key("my-plugin", "3f2a9c", "count:my-project")
        == "plugin:my-plugin:3f2a9c:count:my-project"
    )


@given(
    st.tuples(plugin_names, user_ids, st.text(min_size=1, max_size=30)),
    st.tuples(plugin_names, user_ids, st.text(min_size=1, max_size=30)),
)
def test_distinct_namespaced_keys_never_collide(
    first: tuple[str, str, str], second: tuple[str, str, str]
) -> None:
    try:
        a, b = namespaced_key(*first), namespaced_key(*second)
    except HostCallError:  # a key with a lone surrogate: refused, nothing to compare
        return
    assert (a == b) == (first == second)
    # The first three fields always name the namespace, whatever ':' the key holds.
    assert tuple(a.split(":", 3)[1:]) == first


@pytest.mark.parametrize(
    "name", ["Alpha", "alpha_beta", "alpha--beta", "-alpha", "alpha-", "al:pha", "a*", "", "a" * 65]
)
def test_plugin_names_must_be_lowercase_kebab_case(name: str) -> None:
    with pytest.raises(ValueError, match="kebab-case"):
        check_plugin_name(name)


@pytest.mark.parametrize("name", ["a", "my-plugin", "streak-counter-2", "a" * 64])
def test_kebab_case_plugin_names_pass(name: str) -> None:
    assert check_plugin_name(name) == name


@pytest.mark.parametrize(
    "user_id", ["", "u:1", "u*", "u?", "u[1]", "u]", "u\\1", "u 1", "u\n", ".u", "u" * 129]
)
def test_user_ids_with_separators_or_glob_characters_are_refused(user_id: str) -> None:
    with pytest.raises(ValueError, match="user id"):
        check_user_id(user_id)


@pytest.mark.parametrize(
    "user_id", ["3f2a9c0d1e2f4a5b8c7d6e5f4a3b2c1d", "5b1f7c2e-0a1b-4c2d-8e3f-9a0b1c2d3e4f"]
)
def test_account_ids_pass(user_id: str) -> None:
    assert check_user_id(user_id) == user_id


def test_markers_live_outside_plugin_namespaces() -> None:
    assert marker_key("installed:my-plugin:u1") == "host:installed:my-plugin:u1"
    with pytest.raises(ValueError, match="marker"):
        marker_key("")


@pytest.mark.parametrize(
    ("current", "expected"),
    [(None, 1), ("0", 1), ("-1", 0), ("41", 42), (str(-(2**63)), -(2**63) + 1)],
)
def test_incremented(current: str | None, expected: int) -> None:
    assert incremented("k", current) == expected


def test_glob_characters_are_escaped_for_match_patterns() -> None:
    assert escape_glob("a*b?[c]\\d") == "a\\*b\\?\\[c\\]\\\\d"
    assert escape_glob("plugin:my-plugin:3f2a:") == "plugin:my-plugin:3f2a:"


def test_embedded_store_without_a_redis_url(tmp_path: Path) -> None:
    kv = open_plugin_kv(None, tmp_path)
    assert isinstance(kv, SqlitePluginKeyValue)
    assert kv.path == tmp_path / "plugin-kv.sqlite3"
    assert not kv.path.exists()  # opening is start()'s job
    assert isinstance(open_plugin_kv("", tmp_path), SqlitePluginKeyValue)


def test_redis_store_with_a_redis_url(tmp_path: Path) -> None:
    assert isinstance(open_plugin_kv("redis://127.0.0.1:1/0", tmp_path), RedisPluginKeyValue)
    with pytest.raises(ValueError, match="expected redis://"):
        open_plugin_kv("http://127.0.0.1:1", tmp_path)
