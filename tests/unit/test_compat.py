"""``http_edge.compat``: one router served under the WakaTime base and its aliases."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI

from http_edge.compat import WAKATIME_ALIASES, WAKATIME_PREFIX, aliased_paths, include_aliased


def test_aliased_paths_lists_the_canonical_path_first() -> None:
    assert aliased_paths("/users/{user}/heartbeats") == [
        "/api/v1/users/{user}/heartbeats",
        "/api/compat/wakatime/v1/users/{user}/heartbeats",
        "/api/v1/compat/waka/users/{user}/heartbeats",
    ]
    assert aliased_paths("/x", prefix="/a", aliases=("/b",)) == ["/a/x", "/b/x"]


async def test_include_aliased_serves_one_endpoint_everywhere_and_documents_it_once() -> None:
    router = APIRouter()
    calls: list[str] = []

    @router.post("/users/{user}/ping", status_code=201)
    async def ping(user: str) -> dict[str, str]:
        calls.append(user)
        return {"user": user}

    app = FastAPI()
    include_aliased(app, router)
    transport = httpx.ASGITransport(app=app)

    async with httpx.AsyncClient(transport=transport, base_url="http://codetrackr") as client:
        for base in (WAKATIME_PREFIX, *WAKATIME_ALIASES):
            answer = await client.post(f"{base}/users/current/ping")
            assert (answer.status_code, answer.json()) == (201, {"user": "current"})
        assert (await client.post("/api/v2/users/current/ping")).status_code == 404
    assert calls == ["current"] * 3
    assert list(app.openapi()["paths"]) == ["/api/v1/users/{user}/ping"]
