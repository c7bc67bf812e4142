"""Revocation (RFC 7009) and introspection (RFC 7662) through authlib's endpoint classes.

Both authenticate the caller like the token endpoint (private_key_jwt, or just `client_id`
for the public apps) and act only on tokens issued to that same client. Revoking a resident's
refresh token ends its whole family: that is how the app signs out. Revoking an access token
lists its `jti` until it would have expired anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from bank.auth.grants import NO_CLIENT_AUTH
from bank.auth.server import PRIVATE_KEY_JWT, RegisteredClient

TokenKind = Literal["access_token", "refresh_token"]


@dataclass(frozen=True)
class TokenView:
    """What the store knows about a presented token; `claims` are RFC 7662 members."""

    kind: TokenKind
    client_id: str
    active: bool
    token_id: str  # access: jti; refresh: the family id
    expires_at: int
    claims: dict[str, Any] = field(default_factory=dict)

    def check_client(self, client: RegisteredClient) -> bool:
        return self.client_id == client.client_id

    def is_expired(self) -> bool:
        return not self.active

    def is_revoked(self) -> bool:
        return not self.active


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = [PRIVATE_KEY_JWT, NO_CLIENT_AUTH]

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenView | None:
        found: TokenView | None = self.server.call_store(
            self.server.store.describe_token, token_string
        )
        return found

    def revoke_token(self, token: TokenView, request: Any) -> None:
        if token.active:
            self.server.call_store(self.server.store.revoke_token, token)


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = [PRIVATE_KEY_JWT, NO_CLIENT_AUTH]

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenView | None:
        found: TokenView | None = self.server.call_store(
            self.server.store.describe_token, token_string
        )
        return found

    def check_permission(self, token: TokenView, client: RegisteredClient, request: Any) -> bool:
        # A client learns about its own tokens only; anyone else's are "active": false.
        return token.check_client(client)

    def introspect_token(self, token: TokenView) -> dict[str, Any]:
        return {
            "active": True,
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
            "client_id": token.client_id,
            "exp": token.expires_at,
            **token.claims,
        }
