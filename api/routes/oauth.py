"""Log in with GitHub, GitLab or an OpenID Connect provider (authorization-code flow).

* ``GET /auth/{provider}`` (also ``/auth/{provider}/login``): redirects the browser to the
  provider with a signed, short-lived ``state`` and a PKCE challenge, and sets a cookie with the
  state's nonce on ``/auth/{provider}``.
* ``GET /auth/{provider}/callback?code=&state=``: checks the state (signature, expiry, provider,
  the browser's cookie, not used before), exchanges the code, reads the provider's user, finds or
  creates the account linked to that identity, and starts a session. Answers the tokens as JSON,
  or, with ``CODETRACKR_OAUTH_RETURN_URL`` set, redirects the browser there with the tokens in
  the URL fragment (never sent to a server).

A bad, missing, expired or replayed state is a 400; an unknown or unconfigured provider a 404;
a provider that refuses the code a 400, one that fails or cannot be reached a 502.
See :mod:`accounts.oauth` for the design.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency aliases
# when the routes are declared.

import secrets
import time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from accounts.credentials import hash_secret
from accounts.directory import AccountDirectory, new_event_id
from accounts.oauth import (
    InvalidState,
    OAuthError,
    OAuthProvider,
    ProviderIdentity,
    authorize_url,
    username_candidate,
)
from accounts.state import User
from api.deps import Directory, OAuthSetup, Sessions, Writes, api_parts
from api.routes.account_forms import AccountWrites, check_username, device_of
from api.routes.accounts import token_answer
from http_edge.errors import ApiError, error_responses
from schemas.events import AccountCreated, ProfileUpdated

_COOKIE = "codetrackr_oauth"
_BAD_STATE = "invalid, expired or already used state; start the login again"


def _bad_request(message: str, code: str = "bad_request") -> ApiError:
    return ApiError(400, message, code=code)


router = APIRouter(tags=["accounts"])


def _oauth(request: Request) -> OAuthSetup:
    return api_parts(request).oauth


OAuth = Annotated[OAuthSetup, Depends(_oauth)]


def provider_named(setup: OAuthSetup, name: str) -> OAuthProvider:
    found = setup.providers.get(name)
    if found is None:
        raise ApiError(404, f"no login provider named {name!r} is configured")
    return found


def redirect_uri(setup: OAuthSetup, request: Request, name: str) -> str:
    public_url = setup.public_url
    base = public_url.rstrip("/") if public_url else str(request.base_url).rstrip("/")
    return f"{base}/auth/{name}/callback"


def secure(setup: OAuthSetup, request: Request) -> bool:
    url = setup.public_url or str(request.base_url)
    return url.startswith("https://")


async def login(request: Request, provider: str, setup: OAuth) -> Response:
    chosen = provider_named(setup, provider)
    state, nonce = setup.signer.issue(chosen.name)
    target = authorize_url(
        chosen,
        redirect_uri=redirect_uri(setup, request, chosen.name),
        state=state,
        verifier=setup.signer.code_verifier(nonce),
    )
    response = RedirectResponse(target, status_code=302)
    response.set_cookie(
        _COOKIE,
        nonce,
        max_age=600,
        path=f"/auth/{chosen.name}",
        httponly=True,
        secure=secure(setup, request),
        samesite="lax",
    )
    return response


_LOGIN_SUMMARY = "Log in with an identity provider (redirects to it)"
_LOGIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    302: {"description": "to the provider's authorization page"},
    **error_responses(404),
}
for _path in ("/auth/{provider}", "/auth/{provider}/login"):
    router.add_api_route(
        _path, login, methods=["GET"], summary=_LOGIN_SUMMARY, responses=_LOGIN_RESPONSES
    )


@router.get(
    "/auth/{provider}/callback",
    summary="Where the provider sends the browser back: logs in, answers the tokens",
    responses={
        302: {"description": "to the configured return URL, tokens in the fragment"},
        **error_responses(400, 404, 503),
    },
)
async def callback(
    request: Request,
    provider: str,
    setup: OAuth,
    directory: Directory,
    sessions: Sessions,
    writes: Writes,
    code: Annotated[str | None, Query(max_length=2000)] = None,
    state: Annotated[str | None, Query(max_length=4000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    chosen = provider_named(setup, provider)
    if error is not None:
        raise _bad_request(f"the provider did not authorize the login: {error}")
    if not code or not state:
        raise _bad_request("code and state are required", code="validation_error")
    try:
        nonce = setup.signer.verify(state, chosen.name)
    except InvalidState:
        raise _bad_request(_BAD_STATE, code="invalid_state") from None
    cookie = request.cookies.get(_COOKIE)
    if cookie is None or not secrets.compare_digest(cookie, nonce):
        raise _bad_request(_BAD_STATE, code="invalid_state")
    state_hash = hash_secret(nonce)
    await directory.sync()
    if directory.oauth_state_used(state_hash):
        raise _bad_request(_BAD_STATE, code="invalid_state")
    uri = redirect_uri(setup, request, chosen.name)
    identity = await _identity(setup, chosen, code, uri, nonce)
    user, created = await _account(directory, writes, chosen, identity)
    pair = await sessions.start(
        user, method=chosen.name, device=device_of(request), oauth_state=state_hash
    )
    if pair is None:  # another request consumed this state first
        raise _bad_request(_BAD_STATE, code="invalid_state")
    answer = {**token_answer(pair, user), "created": created}
    response: Response
    if setup.return_url:
        fragment = urlencode({k: str(v) for k, v in answer.items()})
        response = RedirectResponse(f"{setup.return_url}#{fragment}", status_code=302)
    else:
        response = JSONResponse(answer)
    response.delete_cookie(_COOKIE, path=f"/auth/{chosen.name}")
    return response


async def _identity(
    setup: OAuthSetup, chosen: OAuthProvider, code: str, uri: str, nonce: str
) -> ProviderIdentity:
    # A client per login: logins are rare, and nothing then outlives a request.
    client = setup.client_factory()
    try:
        token = await client.exchange(
            chosen, code=code, redirect_uri=uri, verifier=setup.signer.code_verifier(nonce)
        )
        return await client.identity(chosen, token)
    except OAuthError as exc:
        if exc.refused:
            raise _bad_request(str(exc), code="provider_refused") from None
        raise ApiError(502, str(exc), code="provider_unavailable") from None
    finally:
        await client.close()


async def _account(
    directory: AccountDirectory,
    writes: AccountWrites,
    chosen: OAuthProvider,
    identity: ProviderIdentity,
) -> tuple[User, bool]:
    """The account linked to ``identity``, created (with a free username) if none is."""
    for attempt in range(8):
        found = await directory.user_by_identity(chosen.name, identity.subject)
        if found is not None:
            await _sync_avatar(writes, found, identity)
            return found, False
        username = _username(identity, attempt)
        if await directory.user_by_username(username) is not None:
            continue
        event = AccountCreated(
            event_id=new_event_id(),
            user_id=new_event_id(),
            occurred_at=time.time(),
            username=username,
            identity_provider=chosen.name,
            identity_subject=identity.subject,
        )
        if await writes.record(event):
            user = directory.state.users[event.user_id]
            if identity.name or identity.avatar_url:
                await writes.record(
                    ProfileUpdated(
                        event_id=new_event_id(),
                        user_id=user.user_id,
                        occurred_at=time.time(),
                        display_name=(identity.name or "")[:100] or None,
                        avatar_url=_avatar(identity),
                    )
                )
            return directory.state.users[event.user_id], True
        # The username was taken, or a concurrent login linked the identity first:
        # the next round finds that account, or tries another name.
    raise ApiError(409, "could not create the account; retry")  # pragma: no cover


async def _sync_avatar(writes: AccountWrites, user: User, identity: ProviderIdentity) -> None:
    avatar = _avatar(identity)
    if avatar is not None and avatar != user.avatar_url:
        await writes.record(
            ProfileUpdated(
                event_id=new_event_id(),
                user_id=user.user_id,
                occurred_at=time.time(),
                avatar_url=avatar,
            )
        )


def _avatar(identity: ProviderIdentity) -> str | None:
    url = identity.avatar_url
    if url and url.startswith(("https://", "http://")) and len(url) <= 500:
        return url
    return None


def _username(identity: ProviderIdentity, attempt: int) -> str:
    """The provider's login if it is a valid free name, else it with a random suffix."""
    base = username_candidate(identity)
    if attempt == 0:
        try:
            if check_username(base) == base:
                return base
        except ValueError:
            pass
    suffix = secrets.token_hex(2)
    name = f"{base[:34]}-{suffix}"
    try:
        check_username(name)
    except ValueError:
        name = f"user-{suffix}{secrets.token_hex(2)}"
    return name
