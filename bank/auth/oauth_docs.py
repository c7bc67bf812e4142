"""What the OpenAPI document says about the OAuth endpoints: their form bodies, every answer they
give (200, 400, 401; 413 and 415 come with any body), and realistic examples of each.

The endpoints read their forms themselves (authlib decides, and errors must stay in RFC 6749's
format rather than problem+json), so these types describe the wire; nothing decodes into them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from bank.http.openapi import BodyExample, example

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_Assertion = Annotated[
    str,
    msgspec.Meta(
        description="private_key_jwt (RFC 7523): a JWT signed with the client's registered key, "
        "`iss` = `sub` = client_id, `aud` this endpoint's URL, a fresh `jti`, at most 5 minutes "
        "of life. Partners and data sources; public clients send `client_id` instead.",
        max_length=8192,
    ),
]
_ClientId = Annotated[
    str,
    msgspec.Meta(
        description="The public client's id (the residents' app, the operators' console).",
        max_length=200,
    ),
]
_AssertionType = Annotated[
    Literal["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
    msgspec.Meta(description="With `client_assertion`."),
]


class TokenForm(msgspec.Struct, omit_defaults=True):
    """The token request (RFC 6749 §4.1.3, §4.4.2, §6), `application/x-www-form-urlencoded`;
    each parameter at most once."""

    grant_type: Literal["authorization_code", "refresh_token", "client_credentials"]
    code: Annotated[str, msgspec.Meta(description="authorization_code: the code.")] | None = None
    redirect_uri: (
        Annotated[str, msgspec.Meta(description="authorization_code: as sent to /oauth/authorize.")]
        | None
    ) = None
    code_verifier: (
        Annotated[
            str,
            msgspec.Meta(
                min_length=43,
                max_length=128,
                pattern=r"^[A-Za-z0-9._~-]{43,128}$",
                description="authorization_code: the PKCE verifier (RFC 7636) whose S256 "
                "challenge was sent to /oauth/authorize.",
            ),
        ]
        | None
    ) = None
    refresh_token: (
        Annotated[str, msgspec.Meta(description="refresh_token: the refresh token.")] | None
    ) = None
    scope: (
        Annotated[
            str,
            msgspec.Meta(
                description="Space-separated scopes; client_credentials asks for a subset of "
                "the client's registered scopes (all of them when absent)."
            ),
        ]
        | None
    ) = None
    client_id: _ClientId | None = None
    client_assertion_type: _AssertionType | None = None
    client_assertion: _Assertion | None = None


class TokenHintForm(msgspec.Struct, omit_defaults=True):
    """Revocation (RFC 7009) and introspection (RFC 7662), `application/x-www-form-urlencoded`:
    the caller authenticates as at the token endpoint and names one of its own tokens."""

    token: Annotated[str, msgspec.Meta(description="An access or refresh token of the caller's.")]
    token_type_hint: Literal["access_token", "refresh_token"] | None = None
    client_id: _ClientId | None = None
    client_assertion_type: _AssertionType | None = None
    client_assertion: _Assertion | None = None


class TokenResponse(msgspec.Struct, omit_defaults=True):
    access_token: Annotated[str, msgspec.Meta(description="A JWT (RFC 9068), ES256.")]
    token_type: Literal["Bearer"]
    expires_in: Annotated[int, msgspec.Meta(ge=1, le=600, description="Seconds.")]
    scope: Annotated[str, msgspec.Meta(description="The scopes granted, space-separated.")]
    refresh_token: (
        Annotated[
            str,
            msgspec.Meta(
                description="authorization_code and refresh_token grants: the next refresh "
                "token (each is used once; a reused one ends the session)."
            ),
        ]
        | None
    ) = None


class Introspection(msgspec.Struct, omit_defaults=True):
    """RFC 7662. Only `active` for a token that is not the caller's, or not active."""

    active: bool
    token_type: Literal["Bearer", "refresh_token"] | None = None
    client_id: str | None = None
    exp: int | None = None
    sub: str | None = None
    scope: str | None = None
    iat: int | None = None
    iss: str | None = None
    aud: str | None = None
    jti: str | None = None
    ptype: (
        Annotated[
            str, msgspec.Meta(description="resident, partner, source or operator (access tokens).")
        ]
        | None
    ) = None
    sid: Annotated[str, msgspec.Meta(description="The resident's session.")] | None = None


class OAuthError(msgspec.Struct, omit_defaults=True):
    """RFC 6749 §5.2: what OAuth client libraries read."""

    error: Literal[
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "unsupported_token_type",
    ]
    error_description: str | None = None


class ServerMetadata(msgspec.Struct):
    """RFC 8414."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    revocation_endpoint: str
    introspection_endpoint: str
    grant_types_supported: list[str]
    response_types_supported: list[str]
    response_modes_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    token_endpoint_auth_signing_alg_values_supported: list[str]
    revocation_endpoint_auth_methods_supported: list[str]
    revocation_endpoint_auth_signing_alg_values_supported: list[str]
    introspection_endpoint_auth_methods_supported: list[str]
    introspection_endpoint_auth_signing_alg_values_supported: list[str]
    scopes_supported: list[str]
    code_challenge_methods_supported: list[str]
    authorization_response_iss_parameter_supported: bool


class PublicJwk(msgspec.Struct, omit_defaults=True):
    kty: Literal["EC"]
    crv: Literal["P-256"]
    x: str
    y: str
    kid: str
    alg: Literal["ES256"] = "ES256"
    use: Literal["sig"] = "sig"


class Jwks(msgspec.Struct):
    keys: list[PublicJwk]


# Fake but well-formed: a signed JWT is three base64url parts; these examples are documentation.
_JWT = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6IjNmOWMxYTJiIiwidHlwIjoiYXQrand0In0."
    "eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjgwMDAiLCJzdWIiOiI3YjJkNGU2MCJ9."
    "c2lnbmF0dXJlLW9mLXRoZS1iYW5rcy1zaWduaW5nLWtleQ"
)
_ASSERTION = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6InBhcnRuZXIta2V5LTEifQ."
    "eyJpc3MiOiJwYXJ0bmVyLVNhcHBvcm9XZWxsbmVzcyIsImF1ZCI6Imh0dHA6Ly8xMjcuMC4wLjE6ODAwMC9vYXV0aC90b2tlbiJ9."
    "c2lnbmVkLXdpdGgtdGhlLXBhcnRuZXJzLWtleQ"
)
_APP = "resident-app-Jx8kQ2mV7pLw"
_PARTNER = "partner-Sapporo-Wellness-4F7hD"

TOKEN_REQUEST_EXAMPLES = (
    BodyExample(
        "authorization_code",
        "The residents' app redeems its code (PKCE)",
        {
            "grant_type": "authorization_code",
            "code": "Vq3tZ8yH1nW5cR2kB7mX4pL9sD6fG0aJ",
            "redirect_uri": "http://127.0.0.1:8080/callback",
            "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "client_id": _APP,
        },
    ),
    BodyExample(
        "refresh_token",
        "The residents' app refreshes its access token",
        {
            "grant_type": "refresh_token",
            "refresh_token": "q0V9xUe3Rk1tYb7Gm2Hn5Wc8Zs4Ja6Lp_Fd1Tq9Xy0",
            "client_id": _APP,
        },
    ),
    BodyExample(
        "client_credentials",
        "A partner or data source with private_key_jwt",
        {
            "grant_type": "client_credentials",
            "scope": "ingest:transit",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": _ASSERTION,
        },
    ),
)
TOKEN_HINT_EXAMPLES = (
    BodyExample(
        "refresh_token",
        "The residents' app signs out (its refresh token)",
        {"token": "q0V9xUe3Rk1tYb7Gm2Hn5Wc8Zs4Ja6Lp_Fd1Tq9Xy0", "client_id": _APP},
    ),
    BodyExample(
        "access_token",
        "A partner asks about its own access token",
        {
            "token": _JWT,
            "token_type_hint": "access_token",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": _ASSERTION,
        },
    ),
)

example(
    TokenResponse,
    "resident",
    "An access token and the next refresh token (authorization_code, refresh_token)",
    TokenResponse(
        access_token=_JWT,
        token_type="Bearer",
        expires_in=600,
        scope="account records:read records:write",
        refresh_token="Hc4Tn8Wq2Lm6Yb1Vz5Rk9Xp3Js7Dg0Fa_Ue2Qi8Ot4",
    ),
)
example(
    TokenResponse,
    "client_credentials",
    "An access token for a data source",
    TokenResponse(access_token=_JWT, token_type="Bearer", expires_in=600, scope="ingest:transit"),
)
example(
    Introspection,
    "active",
    "The caller's own access token",
    Introspection(
        active=True,
        token_type="Bearer",
        client_id=_PARTNER,
        exp=1796090400,
        sub=_PARTNER,
        scope="partner:data",
        iat=1796089800,
        iss="http://127.0.0.1:8000",
        aud="https://bank.example.jp/partner-api",
        jti="7d1e0c3a9b5f4e2d8c6a1b0f3e9d7c5a",
        ptype="partner",
    ),
)
example(Introspection, "inactive", "Expired, revoked, or not the caller's", Introspection(False))
example(
    Jwks,
    "keys",
    "The key that signs access tokens (two while one is being rotated out)",
    Jwks(
        keys=[
            PublicJwk(
                kty="EC",
                crv="P-256",
                x="f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                y="x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
                kid="3f9c1a2b",
            )
        ]
    ),
)


def oauth_error_response(status: int, description: str, *examples: OAuthError) -> ResponseSpec:
    return ResponseSpec(
        data_container=OAuthError,
        media_type="application/json",
        description=description,
        generate_examples=False,
        examples=[
            Example(summary=e.error_description or e.error, value=msgspec.to_builtins(e))
            for e in examples
        ],
    )


TOKEN_ERRORS = {
    400: oauth_error_response(
        400,
        "RFC 6749 §5.2: the request is malformed (a parameter missing or repeated, NUL in a "
        "field), the grant is invalid (a code or refresh token unknown, used, expired, or for "
        "another client; a PKCE verifier that does not match), the grant type or scope is not "
        "allowed for this client.",
        OAuthError("invalid_request", "A parameter was sent more than once; send each once."),
        OAuthError("invalid_grant", 'Invalid "code" in request.'),
        OAuthError("unsupported_grant_type", "unsupported_grant_type"),
        OAuthError("invalid_scope", "The requested scope is invalid, unknown, or malformed."),
    ),
    401: oauth_error_response(
        401,
        "RFC 6749 §5.2 `invalid_client`: the client is unknown or not active, or its "
        "client_assertion does not verify (signature, audience, lifetime, a reused `jti`).",
        OAuthError("invalid_client", "Invalid client"),
    ),
}
HINT_ERRORS = {
    400: oauth_error_response(
        400,
        "RFC 6749 §5.2: a parameter is missing or repeated, or NUL in a field.",
        OAuthError("invalid_request", "A parameter was sent more than once; send each once."),
    ),
    401: TOKEN_ERRORS[401],
}


def inline_schema(struct: type[msgspec.Struct]) -> dict[str, Any]:
    """A Struct's JSON Schema, inline (the form bodies are written into operations directly)."""
    (schema,), components = msgspec.json.schema_components([struct], ref_template="{name}")
    return dict(components[schema["$ref"]])
