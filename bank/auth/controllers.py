"""OAuth endpoints: metadata (RFC 8414), JWKS, token (RFC 6749/7523), revocation (RFC 7009),
introspection (RFC 7662). The authorization endpoint is in bank.identity.authorize.

OAuth endpoints answer errors in RFC 6749's format (`{"error": ..., "error_description": ...}`),
which OAuth client libraries expect, rather than problem+json.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.endpoints import Introspection as IntrospectionEndpoint
from bank.auth.endpoints import Revocation
from bank.auth.grants import NO_CLIENT_AUTH
from bank.auth.oauth_docs import (
    HINT_ERRORS,
    TOKEN_ERRORS,
    TOKEN_HINT_EXAMPLES,
    TOKEN_REQUEST_EXAMPLES,
    Introspection,
    Jwks,
    ServerMetadata,
    TokenForm,
    TokenHintForm,
    TokenResponse,
    inline_schema,
)
from bank.auth.principals import all_scopes
from bank.auth.server import (
    ASSERTION_ALGORITHMS,
    PRIVATE_KEY_JWT,
    BankAuthorizationServer,
    FormRequest,
    run_authlib,
)
from bank.auth.store import DatabaseOAuthStore
from bank.http.openapi import FORM, BodyExample, example
from bank.http.transaction import DbSession
from bank.logs import get_logger

log = get_logger("bank.auth")

AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"
JWKS_PATH = "/oauth/jwks"
REVOKE_PATH = "/oauth/revoke"
INTROSPECT_PATH = "/oauth/introspect"
_AUTH_METHODS = [PRIVATE_KEY_JWT, NO_CLIENT_AUTH]


def server_metadata(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}{AUTHORIZE_PATH}",
        "token_endpoint": f"{issuer}{TOKEN_PATH}",
        "jwks_uri": f"{issuer}{JWKS_PATH}",
        "revocation_endpoint": f"{issuer}{REVOKE_PATH}",
        "introspection_endpoint": f"{issuer}{INTROSPECT_PATH}",
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "token_endpoint_auth_methods_supported": _AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "revocation_endpoint_auth_methods_supported": _AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "introspection_endpoint_auth_methods_supported": _AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "scopes_supported": all_scopes(),
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
    }


async def build_server(state: State, db_session: AsyncSession) -> BankAuthorizationServer:
    """An authorization server for one request, bound to that request's session."""
    issuer: str = state.settings.public_url
    server = BankAuthorizationServer(
        store=DatabaseOAuthStore(
            db_session,
            state.database,
            state.jwks_fetcher,
            signing_keys=state.signing_keys,
            issuer=issuer,
            cache=state.auth_cache,
        ),
        issuer=issuer,
        signing_key=await state.signing_keys.active(),
        access_token_ttl_s=state.settings.access_token_ttl_s,
    )
    server.register_endpoint(Revocation)
    server.register_endpoint(IntrospectionEndpoint)
    return server


class RepeatedParameter(Exception):
    """A form parameter sent more than once (RFC 6749 §3.1, §3.2: invalid_request)."""


async def oauth_form_request(request: Request[Any, Any, Any], path: str) -> FormRequest:
    """The request's form as authlib sees it, at `path` under the public URL (which is also the
    audience a client assertion may name for the endpoint that receives it)."""
    form = await request.form()
    params = {key: form.getall(key) for key in form}
    if any(len(values) > 1 for values in params.values()):
        # authlib reads the first value and checks repetition only at the authorization endpoint.
        raise RepeatedParameter
    return FormRequest(
        method="POST",
        uri=f"{request.app.state.settings.public_url}{path}",
        headers=request.headers,
        form=params,
    )


def _refuse_repeated_parameter(
    request: Request[Any, Any, Any], exc: RepeatedParameter
) -> Response[Any]:
    log.info("auth.request_refused", path=request.url.path, error="invalid_request")
    body = {
        "error": "invalid_request",
        "error_description": "A parameter was sent more than once; send each parameter once.",
    }
    return Response(
        body, status_code=400, headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )


def _oauth_response(status: int, body: Any, headers: list[tuple[str, str]]) -> Response[Any]:
    if isinstance(body, dict) and body.get("error") == "invalid_client":
        # authlib answers 400 or 401 depending on the check that failed; clients get one.
        status = 401
    return Response(body, status_code=status, headers=dict(headers))


def _answer(container: type[msgspec.Struct], description: str) -> ResponseSpec:
    return ResponseSpec(data_container=container, description=description, generate_examples=False)


def _form(shape: type[msgspec.Struct], examples: tuple[BodyExample, ...]) -> dict[str, Any]:
    """The handler's `opt`: it reads this form itself; the document shows its shape and
    examples, and its errors are RFC 6749's, not problem+json."""
    return {
        "body_media_type": FORM,
        "form_schema": inline_schema(shape),
        "request_examples": examples,
        "oauth_errors": True,
    }


example(
    ServerMetadata,
    "metadata",
    "The bank's authorization server",
    msgspec.convert(server_metadata("http://127.0.0.1:8000"), ServerMetadata),
)


class OAuthController(Controller):
    tags = ("oauth",)
    exception_handlers = {RepeatedParameter: _refuse_repeated_parameter}  # noqa: RUF012

    @get(
        "/.well-known/oauth-authorization-server",
        operation_id="GetAuthorizationServerMetadata",
        summary="RFC 8414 authorization server metadata",
        responses={200: _answer(ServerMetadata, "Every endpoint, method and algorithm")},
    )
    async def metadata(self, state: State) -> Response[dict[str, Any]]:
        return Response(
            server_metadata(state.settings.public_url),
            headers={"Cache-Control": "public, max-age=300"},
        )

    @get(
        JWKS_PATH,
        operation_id="GetJwks",
        summary="Public keys that sign access tokens",
        responses={200: _answer(Jwks, "The JWK Set (RFC 7517)"), 400: HINT_ERRORS[400]},
        opt={"oauth_errors": True},  # /oauth/* answers a refused query in RFC 6749's format
    )
    async def jwks(self, state: State, db_session: DbSession) -> Response[dict[str, Any]]:
        await state.signing_keys.active()  # a new database gets its first key, committed, here
        keys = await state.signing_keys.published(db_session)
        # Short caching: a rotated key must reach verifiers well before its first token expires.
        return Response({"keys": keys}, headers={"Cache-Control": "public, max-age=60"})

    @post(
        TOKEN_PATH,
        operation_id="IssueToken",
        summary="Token endpoint: authorization_code + PKCE, refresh_token, client_credentials",
        description="The residents' app and the operators' console redeem the code of "
        "/oauth/authorize with its PKCE verifier, then refresh (each refresh token works once); "
        "partners and data sources use client_credentials with a client assertion "
        "(private_key_jwt). Errors are RFC 6749's (`error`, `error_description`).",
        status_code=200,
        responses={200: _answer(TokenResponse, "The tokens"), **TOKEN_ERRORS},
        opt=_form(TokenForm, TOKEN_REQUEST_EXAMPLES),
    )
    async def token(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[Any]:
        oauth_request = await oauth_form_request(request, TOKEN_PATH)
        grant_type = oauth_request.form.get("grant_type")
        server = await build_server(state, db_session)
        status, body, headers = await run_authlib(server.create_token_response, oauth_request)
        if status == 200:
            for issued in server.issued:
                log.info("auth.token_issued", grant_type=grant_type, **issued)
        else:
            log.info(
                "auth.token_refused", grant_type=grant_type, error=body.get("error"), status=status
            )
        return _oauth_response(status, body, headers)

    @post(
        REVOKE_PATH,
        operation_id="RevokeToken",
        summary="Token revocation (RFC 7009); a refresh token ends its whole session",
        description="200 with no body whether or not the token was known (RFC 7009 §2.2): a "
        "client cannot learn about tokens that are not its own.",
        status_code=200,
        response_description="Revoked, or nothing to revoke",
        responses=HINT_ERRORS,
        opt={
            **_form(TokenHintForm, TOKEN_HINT_EXAMPLES),
            "response_examples": (BodyExample("revoked", "Revoked, or nothing to revoke", {}),),
        },
    )
    async def revoke(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[Any]:
        oauth_request = await oauth_form_request(request, REVOKE_PATH)
        server = await build_server(state, db_session)
        status, body, headers = await run_authlib(
            server.create_endpoint_response, Revocation.ENDPOINT_NAME, oauth_request
        )
        return _oauth_response(status, body, headers)

    @post(
        INTROSPECT_PATH,
        operation_id="IntrospectToken",
        summary="Token introspection (RFC 7662), for the caller's own tokens",
        status_code=200,
        responses={200: _answer(Introspection, "What the token is"), **HINT_ERRORS},
        opt=_form(TokenHintForm, TOKEN_HINT_EXAMPLES),
    )
    async def introspect(
        self, request: Request[Any, Any, Any], state: State, db_session: DbSession
    ) -> Response[Any]:
        oauth_request = await oauth_form_request(request, INTROSPECT_PATH)
        server = await build_server(state, db_session)
        status, body, headers = await run_authlib(
            server.create_endpoint_response, IntrospectionEndpoint.ENDPOINT_NAME, oauth_request
        )
        return _oauth_response(status, body, headers)
