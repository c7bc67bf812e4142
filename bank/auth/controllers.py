"""OAuth endpoints: server metadata (RFC 8414), JWKS, token (RFC 6749/7523).

OAuth endpoints answer errors in RFC 6749's format (`{"error": ..., "error_description": ...}`),
which OAuth client libraries expect, rather than problem+json.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State

from bank.auth.principals import all_scopes
from bank.auth.server import (
    ASSERTION_ALGORITHMS,
    PRIVATE_KEY_JWT,
    BankAuthorizationServer,
    FormRequest,
)
from bank.auth.store import DatabaseOAuthStore
from bank.http.transaction import DbSession
from bank.logs import get_logger

log = get_logger("bank.auth")

TOKEN_PATH = "/oauth/token"
JWKS_PATH = "/oauth/jwks"


def server_metadata(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}{TOKEN_PATH}",
        "jwks_uri": f"{issuer}{JWKS_PATH}",
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": [PRIVATE_KEY_JWT],
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "scopes_supported": all_scopes(),
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
    }


class OAuthController(Controller):
    tags = ("oauth",)

    @get(
        "/.well-known/oauth-authorization-server",
        operation_id="GetAuthorizationServerMetadata",
        summary="RFC 8414 authorization server metadata",
    )
    async def metadata(self, state: State) -> Response[dict[str, Any]]:
        return Response(
            server_metadata(state.settings.public_url),
            headers={"Cache-Control": "public, max-age=300"},
        )

    @get(JWKS_PATH, operation_id="GetJwks", summary="Public keys that sign access tokens")
    async def jwks(self, state: State, db_session: DbSession) -> Response[dict[str, Any]]:
        await state.signing_keys.active(db_session)  # a new database gets its first key here
        keys = await state.signing_keys.published(db_session)
        # Short caching: a rotated key must reach verifiers well before its first token expires.
        return Response({"keys": keys}, headers={"Cache-Control": "public, max-age=60"})

    @post(
        TOKEN_PATH,
        operation_id="IssueToken",
        summary="Token endpoint (client_credentials with private_key_jwt)",
        status_code=200,
        opt={"body_media_type": "application/x-www-form-urlencoded"},
    )
    async def token(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[Any]:
        form = await request.form()
        issuer: str = state.settings.public_url
        oauth_request = FormRequest(
            method="POST",
            uri=f"{issuer}{TOKEN_PATH}",
            headers=request.headers,
            form={key: form.getall(key) for key in form},
        )
        server = BankAuthorizationServer(
            store=DatabaseOAuthStore(db_session, state.database.sessions, state.jwks_fetcher),
            issuer=issuer,
            signing_key=await state.signing_keys.active(db_session),
            access_token_ttl_s=state.settings.access_token_ttl_s,
        )
        status, body, headers = await anyio.to_thread.run_sync(
            server.create_token_response, oauth_request
        )
        if body.get("error") == "invalid_client":
            # authlib answers 400 or 401 depending on the check that failed; clients get one.
            status = 401
        if status == 200:
            for issued in server.issued:
                log.info("auth.token_issued", grant_type="client_credentials", **issued)
        else:
            log.info("auth.token_refused", error=body.get("error"), status=status)
        return Response(body, status_code=status, headers=dict(headers))
