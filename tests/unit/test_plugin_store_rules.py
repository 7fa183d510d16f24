"""The store's publish and browse rules (:mod:`api.rules.plugin_store`) over a folded catalog."""

from __future__ import annotations

import itertools

from accounts.plugins import PluginCatalog
from api.rules.plugin_store import browse, page_of, publish_refusal, total_pages
from schemas.events import (
    PluginInstalled,
    PluginModerated,
    PluginPublished,
    PluginReviewed,
)

_ids = itertools.count()


def eid() -> str:
    return f"ev-{next(_ids)}"


def catalog_of(*events: object) -> PluginCatalog:
    catalog = PluginCatalog()
    for event in events:
        assert catalog.apply(event)  # type: ignore[arg-type]
    return catalog


def published(user: str, name: str, at: float, description: str = "") -> PluginPublished:
    return PluginPublished(
        event_id=eid(),
        user_id=user,
        occurred_at=at,
        name=name,
        display_name=name.replace("-", " ").title(),
        description=description,
    )


def installed(user: str, name: str) -> PluginInstalled:
    return PluginInstalled(event_id=eid(), user_id=user, occurred_at=10.0, name=name)


def reviewed(user: str, name: str, rating: int) -> PluginReviewed:
    return PluginReviewed(event_id=eid(), user_id=user, occurred_at=11.0, name=name, rating=rating)


def banned(name: str) -> PluginModerated:
    return PluginModerated(
        event_id=eid(), user_id="admin", occurred_at=12.0, name=name, action="ban"
    )


def test_an_anonymous_account_publishes_only_when_the_setting_is_any() -> None:
    refusal = publish_refusal(
        user_id="u1", identity_provider=None, setting="linked", current=None, display_name="X"
    )
    assert refusal is not None
    assert (refusal.status, refusal.code) == (403, "publish_not_allowed")
    assert "CODETRACKR_PLUGIN_PUBLISH" in refusal.message
    assert "GitHub" in refusal.message
    for provider, setting in (("github", "linked"), ("oidc", "linked"), (None, "any")):
        assert (
            publish_refusal(
                user_id="u1",
                identity_provider=provider,
                setting=setting,  # type: ignore[arg-type]
                current=None,
                display_name="X",
            )
            is None
        )


def test_only_the_original_publisher_updates_and_never_a_banned_plugin() -> None:
    catalog = catalog_of(published("alice", "streak", 1.0))
    current = catalog.plugin("streak")
    taken = publish_refusal(
        user_id="bob",
        identity_provider="github",
        setting="linked",
        current=current,
        display_name=None,
    )
    assert taken is not None
    assert (taken.status, taken.code) == (409, "name_taken")
    assert (
        publish_refusal(
            user_id="alice",
            identity_provider="github",
            setting="linked",
            current=current,
            display_name=None,
        )
        is None
    )
    catalog.apply(banned("streak"))
    refused = publish_refusal(
        user_id="alice",
        identity_provider="github",
        setting="linked",
        current=catalog.plugin("streak"),
        display_name=None,
    )
    assert refused is not None
    assert (refused.status, refused.code) == (403, "plugin_banned")


def test_a_first_publish_needs_a_display_name() -> None:
    refusal = publish_refusal(
        user_id="u1", identity_provider="gitlab", setting="linked", current=None, display_name=None
    )
    assert refusal is not None
    assert refusal.status == 400
    assert refusal.details["fields"] == {"display_name": "required on the first publish"}


def test_browse_searches_sorts_and_never_lists_a_banned_plugin() -> None:
    catalog = catalog_of(
        published("a", "alpha", 1.0, "Counts your commits"),
        published("a", "beta", 2.0, "a chart of languages"),
        published("b", "gamma", 3.0, "streak COMMITS too"),
        published("b", "delta", 4.0),
        installed("u1", "beta"),
        installed("u2", "beta"),
        installed("u1", "gamma"),
        reviewed("u1", "alpha", 5),
        reviewed("u1", "gamma", 3),
        reviewed("u2", "gamma", 4),
        banned("delta"),
    )
    names = [p.name for p in browse(catalog, None, "installs")]
    assert names == ["beta", "gamma", "alpha"]
    assert [p.name for p in browse(catalog, None, "rating")] == ["alpha", "gamma", "beta"]
    assert [p.name for p in browse(catalog, None, "new")] == ["gamma", "beta", "alpha"]
    assert [p.name for p in browse(catalog, "commits", "new")] == ["gamma", "alpha"]
    assert [p.name for p in browse(catalog, "DELTA", "new")] == []  # banned
    assert [p.name for p in browse(catalog, "Bet", "installs")] == ["beta"]  # display name


def test_pages() -> None:
    items = list(range(45))
    assert page_of(items, 1, 20) == list(range(20))
    assert page_of(items, 3, 20) == list(range(40, 45))
    assert page_of(items, 4, 20) == []
    assert (total_pages(45, 20), total_pages(0, 20), total_pages(40, 20)) == (3, 1, 2)
