"""The one resource-server check every protected route uses: `guards=[requires(...)]`.

It reads `Authorization: Bearer`, validates the JWT (bank.auth.tokens), insists on the route's
principal type (by audience) and scopes, and refuses tokens revoked since they were issued: the
client was suspended, the token itself was revoked, or (for residents) its session ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard, Scope
from sqlalchemy import ColumnElement, Select, bindparam, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.cache import AuthCache
from bank.auth.errors import InsufficientScope, InvalidToken, MissingToken
from bank.auth.keys import SigningKeys
from bank.auth.models import ClientStatus, OAuthClient, RevokedAccessToken, TokenFamily
from bank.auth.principals import AUDIENCES, Principal, PrincipalType
from bank.auth.tokens import VerifiedTokens, token_kid, validate_access_token

_PRINCIPAL_KEY = "bank.principal"

# Handlers behind `requires(...)` declare `principal: CurrentPrincipal`.
CurrentPrincipal: TypeAlias = NamedDependency[Principal]
SECURITY_SCHEME = "oauth2"
# The same tokens pasted by hand (Swagger UI's bearer field, a token from the README's curl).
BEARER_SCHEME = "bearer"


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get("authorization")
    if not header:
        raise MissingToken("This operation requires an access token.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or " " in token.strip():
        raise InvalidToken("Use the Bearer scheme: `Authorization: Bearer <token>`.")
    return token.strip()


async def authenticate(
    token: str,
    *,
    sessions: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    keys: SigningKeys,
    issuer: str,
    cache: AuthCache | None = None,
    verified: VerifiedTokens | None = None,
) -> Principal:
    """Validate a token completely, revocation included.

    With `verified`, a token whose signature and claims this process already checked is not
    checked again until it expires. With `cache` (live: bank.auth.cache), its standing is read
    from the database once and then served from memory until a revocation or a client change
    commits. A session is opened from `sessions` only when the database must be asked.
    """
    now = int(time.time())
    principal = verified.get(token, now) if verified is not None else None
    if principal is not None and cache is not None:
        standing = cache.peek(_standing_key(principal))
        if standing is not None:
            _refuse_revoked(standing, principal)
            return principal
    async with sessions() as session:
        if principal is None:
            kid = token_kid(token)
            key = await keys.public_key(session, kid)  # from its cache without I/O when fresh
            principal = validate_access_token(token, key_for=lambda _: key, issuer=issuer, now=now)
            if verified is not None:
                verified.remember(token, principal)
        if cache is None:
            standing = await _standing_of(session, principal)
        else:
            checked = principal
            standing = await cache.get(
                _standing_key(checked), lambda: _standing_of(session, checked)
            )
    _refuse_revoked(standing, principal)
    return principal


def _standing_key(principal: Principal) -> tuple[str, str, str, str | None]:
    return ("standing", principal.client_id, principal.token_id, principal.session_id)


def _standing(revoked: ColumnElement[bool]) -> Select[str, datetime, bool]:
    return select(OAuthClient.status, OAuthClient.tokens_not_before, revoked).where(
        OAuthClient.client_id == bindparam("client_id")
    )


# One round trip: the client's standing, the token's own revocation, and (for tokens issued to
# a signed-in account) whether its session was ended. Built once: on every request, building
# the statement would cost as much as running it (bank.db.bulk).
_TOKEN_REVOKED = exists().where(RevokedAccessToken.jti == bindparam("jti"))
_STANDING = _standing(_TOKEN_REVOKED)
_STANDING_IN_SESSION = _standing(
    or_(
        _TOKEN_REVOKED,
        ~exists().where(TokenFamily.id == bindparam("sid"), TokenFamily.revoked_at.is_(None)),
    )
)


@dataclass(frozen=True)
class _Standing:
    client_status: str | None  # None: no such client
    tokens_not_before: int
    revoked: bool


async def _standing_of(session: AsyncSession, principal: Principal) -> _Standing:
    token = {"client_id": principal.client_id, "jti": principal.token_id}
    if principal.session_id is None:
        row = (await session.execute(_STANDING, token)).one_or_none()
    else:
        token["sid"] = principal.session_id
        row = (await session.execute(_STANDING_IN_SESSION, token)).one_or_none()
    if row is None:
        return _Standing(client_status=None, tokens_not_before=0, revoked=False)
    return _Standing(
        client_status=row.status,
        tokens_not_before=int(row.tokens_not_before.timestamp()),
        revoked=bool(row[2]),
    )


def _refuse_revoked(standing: _Standing, principal: Principal) -> None:
    if standing.client_status != ClientStatus.ACTIVE.value:
        raise InvalidToken("The client of this token is not active.")
    if principal.issued_at < standing.tokens_not_before or standing.revoked:
        raise InvalidToken("The token was revoked.")


# What a `requires` guard can answer; the OpenAPI document lists them on every guarded route
# (bank.http.openapi reads a guard's `problems`).
GUARD_PROBLEMS = (MissingToken.problem, InvalidToken.problem, InsufficientScope.problem)


class _Requires:
    """The guard `requires` makes; a class so that it can say which problems it answers."""

    problems = GUARD_PROBLEMS

    def __init__(self, principal_type: PrincipalType, scopes: frozenset[str]) -> None:
        self.principal_type = principal_type
        self.required = scopes

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        await _admit(connection, self.principal_type, self.required)


def requires(principal_type: PrincipalType, *scopes: str) -> Guard:
    """A guard admitting only `principal_type` tokens holding every one of `scopes`."""
    return _Requires(principal_type, frozenset(scopes))


async def _admit(
    connection: ASGIConnection[Any, Any, Any, Any],
    principal_type: PrincipalType,
    required: frozenset[str],
) -> None:
    app_state = connection.app.state
    token = bearer_token(connection)
    principal = await authenticate(
        token,
        # Outside the request's transaction: one statement, no BEGIN or COMMIT round trips,
        # which were most of the guard's cost (benchmarks/oauth_tokens.py).
        sessions=app_state.database.autocommit_sessions,
        keys=app_state.signing_keys,
        issuer=app_state.settings.public_url,
        cache=app_state.auth_cache,
        verified=app_state.verified_tokens,
    )
    if principal.type is not principal_type:
        raise InvalidToken(f"This API accepts only tokens for {AUDIENCES[principal_type]}.")
    if principal.type is PrincipalType.RESIDENT and principal.session_id is None:
        # Every resident token we issue names its session (sid), which is how sign-out and
        # erasure end it; one without is not ours to honour.
        raise InvalidToken("A resident token must name its session.")
    if not required <= principal.scopes:
        raise InsufficientScope(required)
    connection.scope["state"][_PRINCIPAL_KEY] = principal


def security(*scopes: str) -> list[dict[str, list[str]]]:
    """The OpenAPI security requirement matching `requires(..., *scopes)`: an OAuth 2 token with
    those scopes, obtained through the flows or pasted as a bearer token (either will do)."""
    return [{SECURITY_SCHEME: sorted(scopes)}, {BEARER_SCHEME: []}]


async def provide_principal(scope: Scope) -> Principal:
    """Dependency: the caller a guard admitted (routes without a guard never get one)."""
    principal: Principal | None = scope["state"].get(_PRINCIPAL_KEY)
    if principal is None:
        raise RuntimeError("provide_principal used on a route without a `requires` guard")
    return principal
