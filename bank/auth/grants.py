"""Authorization code + PKCE and refresh-token grants for the public apps (RFC 6749, 7636, 9700).

Overrides of authlib's defaults: PKCE with S256 is required on every authorization request
(authlib accepts none, or `plain`); `redirect_uri` is required and must match a registered one
exactly (but for a loopback one's port, RFC 8252 §7.3: bank.auth.redirects); codes live 60 s and
work once, and a replayed code revokes the tokens the first use issued; refresh tokens rotate on
every use and a rotated token presented again revokes its whole family. The replay checks live in
the store, which sees the used rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import InvalidRequestError, InvalidScopeError, OAuth2Request
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc7636 import CodeChallenge

from bank.auth.models import ClientKind

CODE_LIFETIME_S = 60
NO_CLIENT_AUTH = "none"  # public clients: the app proves possession with PKCE instead


@dataclass(frozen=True)
class GrantUser:
    """The signed-in account a grant issues tokens for, and the scopes its role allows."""

    account_id: uuid.UUID
    kind: str  # "resident" | "operator"
    allowed_scopes: frozenset[str] | None = None  # None: whatever the client may ask for
    family_id: str | None = None  # the session (token family) tokens belong to

    def get_user_id(self) -> str:
        return str(self.account_id)


@dataclass(frozen=True)
class IssuedCode:
    """An unused, unexpired authorization code, as the store found it."""

    code_hash: str
    client_id: str
    user: GrantUser
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass(frozen=True)
class LiveRefreshToken:
    token_hash: str
    client_id: str
    user: GrantUser
    scope: str

    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope


def account_kind_for(client_kind: ClientKind) -> str:
    """Residents sign in to the residents' app; operators to the operators' console."""
    return "operator" if client_kind is ClientKind.OPERATOR_CONSOLE else "resident"


class S256Challenge(CodeChallenge):  # type: ignore[misc]
    """PKCE required on every request, S256 only (RFC 9700 §2.1.1; FAPI 2.0)."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with S256.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256 (plain is refused).")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier' (PKCE is required).")
        super().validate_code_verifier(grant, result)


class AuthorizationCode(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [NO_CLIENT_AUTH]

    @staticmethod
    def validate_authorization_redirect_uri(request: OAuth2Request, client: Any) -> str:
        redirect_uri = request.payload.redirect_uri
        if not redirect_uri:
            raise InvalidRequestError("Missing 'redirect_uri' in request.")
        if not client.check_redirect_uri(redirect_uri):
            raise InvalidRequestError("The redirect_uri is not registered for this client.")
        return str(redirect_uri)

    def validate_requested_scope(self) -> None:
        requested = set((self.request.payload.scope or "").split())
        if not requested <= self.request.client.scopes:
            raise InvalidScopeError(description="The client was not registered for that scope.")

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        user: GrantUser = request.user
        scope = request.scope
        if user.allowed_scopes is not None:
            scope = " ".join(sorted(set(scope.split()) & user.allowed_scopes))
        self.server.call_store(
            self.server.store.save_code,
            code=code,
            client_id=request.client.client_id,
            user=user,
            redirect_uri=request.payload.redirect_uri,
            scope=scope,
            code_challenge=request.payload.data["code_challenge"],
            code_challenge_method=request.payload.data["code_challenge_method"],
        )

    def query_authorization_code(self, code: str, client: Any) -> IssuedCode | None:
        found: IssuedCode | None = self.server.call_store(
            self.server.store.redeem_code, code, client.client_id
        )
        return found

    def delete_authorization_code(self, authorization_code: IssuedCode) -> None:
        return None  # the store marked it used when it was redeemed

    def authenticate_user(self, authorization_code: IssuedCode) -> GrantUser:
        return authorization_code.user


class RefreshToken(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [NO_CLIENT_AUTH]
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation on every use

    def authenticate_refresh_token(self, refresh_token: str) -> LiveRefreshToken | None:
        client_id = self.request.client.client_id if self.request.client else None
        found: LiveRefreshToken | None = self.server.call_store(
            self.server.store.redeem_refresh_token, refresh_token, client_id
        )
        return found

    def authenticate_user(self, refresh_token: LiveRefreshToken) -> GrantUser:
        return refresh_token.user

    def revoke_old_credential(self, refresh_token: LiveRefreshToken) -> None:
        return None  # the store marked it used when it was redeemed
