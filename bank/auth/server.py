"""authlib's authorization server core behind Litestar, with its unsafe defaults overridden.

authlib is synchronous. Each OAuth request runs the whole authlib call in a greenlet on the event
loop (`run_authlib`), and every storage callback awaits the request's own AsyncSession from inside
it (`on_loop`), the way SQLAlchemy's asyncio layer runs its synchronous ORM: no thread hops, the
session stays on its loop, and the token request is one transaction. authlib's own work between
the callbacks is short CPU work (one signature check, one signature), like any handler's.

Overrides of authlib's defaults: only `private_key_jwt` for confidential clients (no shared
secrets), an algorithm allow-list and an `exp` ceiling on client assertions, `jti` replay refused,
ES256 JWT access tokens of at most 10 minutes, scopes limited to what the client was registered
for, and only active clients.
"""

from __future__ import annotations

import copy
import secrets
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, ClassVar, ParamSpec, TypeVar

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidClientError,
    InvalidScopeError,
    OAuth2Payload,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet
from sqlalchemy.util import await_only, greenlet_spawn

from bank.auth.grants import (
    AuthorizationCode,
    GrantUser,
    IssuedCode,
    LiveRefreshToken,
    RefreshToken,
    S256Challenge,
)
from bank.auth.jwks import JwksUnavailable
from bank.auth.keys import ActiveKey
from bank.auth.models import ClientKind
from bank.auth.principals import PRINCIPAL_OF_CLIENT
from bank.auth.redirects import redirect_uri_matches
from bank.auth.tokens import mint_access_token
from bank.http.json_guard import InputRefused, check_compact_jws
from bank.logs import get_logger

log = get_logger("bank.auth")

P = ParamSpec("P")
R = TypeVar("R")

PRIVATE_KEY_JWT = "private_key_jwt"
# RFC 9864 renames EdDSA to Ed25519; both names are accepted for the same keys.
ASSERTION_ALGORITHMS = ["ES256", "PS256", "EdDSA", "Ed25519"]
ASSERTION_MAX_LIFETIME_S = 300
CLOCK_SKEW_S = 60

_CONFIDENTIAL = {ClientKind.PARTNER, ClientKind.SOURCE}

# joserfc warns on every EdDSA verification since RFC 9864 named it "Ed25519"; the issue's
# allow-list names EdDSA, and clients in the wild still send it, so both stay accepted quietly.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)


@dataclass(frozen=True)
class RegisteredClient(ClientMixin):  # type: ignore[misc]
    """A snapshot of an active client's registration, safe to read from any thread."""

    client_id: str
    kind: ClientKind
    scopes: frozenset[str]
    redirect_uris: tuple[str, ...] = ()
    jwks: Mapping[str, Any] | None = None
    jwks_uri: str | None = None

    @property
    def auth_method(self) -> str:
        return PRIVATE_KEY_JWT if self.kind in _CONFIDENTIAL else "none"

    @cached_property
    def inline_keys(self) -> KeySet:
        """The registered `jwks`, imported (raises JoseError or ValueError if unusable)."""
        return KeySet.import_key_set(dict(self.jwks or {"keys": []}))  # type: ignore[arg-type]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # redirect_uri is always required: never redirect to a guessed one

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return " ".join(sorted(self.scopes))
        return " ".join(sorted(set(scope.split()) & self.scopes))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact match, no prefix or pattern; only a loopback redirect's port may differ.
        return any(redirect_uri_matches(known, redirect_uri) for known in self.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        return False  # the bank never issues shared secrets

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.auth_method

    @property
    def is_public(self) -> bool:
        return self.kind not in _CONFIDENTIAL

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.kind not in _CONFIDENTIAL

    def check_grant_type(self, grant_type: str) -> bool:
        if self.kind in _CONFIDENTIAL:
            return grant_type == "client_credentials"
        return grant_type in {"authorization_code", "refresh_token"}


class OAuthStore:
    """What the authorization server reads and writes, as coroutines on the event loop."""

    async def client(self, client_id: str) -> RegisteredClient | None:
        raise NotImplementedError

    async def remember_assertion(self, client_id: str, jti: str, expires_at: datetime) -> bool:
        """Record a client assertion's `jti`; False if it was seen before."""
        raise NotImplementedError

    async def client_keys(self, client: RegisteredClient) -> Mapping[str, Any]:
        """The client's public JWKS (inline or fetched from its `jwks_uri`)."""
        raise NotImplementedError

    async def save_code(
        self,
        *,
        code: str,
        client_id: str,
        user: GrantUser,
        redirect_uri: str,
        scope: str,
        code_challenge: str,
        code_challenge_method: str,
    ) -> None:
        """Store a new code (hashed) and open the token family it starts."""
        raise NotImplementedError

    async def redeem_code(self, code: str, client_id: str) -> IssuedCode | None:
        """Mark a live code used and return it; a used one revokes its family and gives None."""
        raise NotImplementedError

    async def redeem_refresh_token(
        self, token: str, client_id: str | None
    ) -> LiveRefreshToken | None:
        """Mark a live refresh token used; a used one revokes its family and gives None."""
        raise NotImplementedError

    async def save_refresh_token(self, token: str, *, family_id: str, scope: str) -> None:
        raise NotImplementedError


async def run_authlib(fn: Callable[..., R], *args: Any) -> R:
    """Run a synchronous authlib call in a greenlet, so that `on_loop` can await inside it."""
    result: R = await greenlet_spawn(fn, *args)
    return result


def on_loop(fn: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
    """From authlib's synchronous code (under `run_authlib`), await a store coroutine.

    A thread per request and a hop back to the loop for every storage call cost more than the
    whole token request's own work (benchmarks/oauth_tokens.py); the greenlet costs a switch.
    """
    result: R = await_only(fn(*args, **kwargs))
    return result


class FormPayload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, datalist: dict[str, list[str]]) -> None:
        self._datalist = datalist
        self._data = {key: values[0] for key, values in datalist.items() if values}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class FormRequest(OAuth2Request):  # type: ignore[misc]
    """An OAuth request whose parameters come only from an already-read form body."""

    def __init__(
        self, *, method: str, uri: str, headers: Mapping[str, str], form: dict[str, list[str]]
    ) -> None:
        super().__init__(method=method, uri=uri, headers=dict(headers))
        self.payload = FormPayload(form)

    @property
    def form(self) -> dict[str, str]:
        data: dict[str, str] = self.payload.data
        return data

    @property
    def args(self) -> dict[str, str]:
        return {}  # parameters in the query string are not read by the token endpoint


class PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    """RFC 7523 client authentication, narrowed to what FAPI 2.0 allows."""

    CLIENT_AUTH_METHOD = PRIVATE_KEY_JWT

    def __init__(self, server: BankAuthorizationServer) -> None:
        super().__init__(validate_jti=True, leeway=CLOCK_SKEW_S)
        self.server = server

    receiving_endpoint: str | None = None

    def __call__(self, query_client: Any, request: OAuth2Request) -> Any:
        # The audience depends on the endpoint receiving the request: check this request on a
        # copy bound to it, so an instance shared by concurrent requests never mixes them up.
        bound = copy.copy(self)
        bound.receiving_endpoint = request.uri
        return JWTBearerClientAssertion.__call__(bound, query_client, request)

    def get_audiences(self) -> list[str]:
        """The issuer and the token endpoint everywhere (RFC 7523 §3: the AS as a whole), and the
        URL of the endpoint receiving the assertion (revocation, introspection), which is what
        authlib's client and others sign by default. An assertion naming one of those other
        endpoints is good there only."""
        audiences = [self.server.issuer, self.server.token_endpoint]
        if self.receiving_endpoint and self.receiving_endpoint not in audiences:
            audiences.append(self.receiving_endpoint)
        return audiences

    def resolve_client_public_key(self, client: RegisteredClient) -> KeySet:
        try:
            if client.jwks is not None:
                return client.inline_keys  # imported once per cached registration
            jwks = on_loop(self.server.store.client_keys, client)
        except JwksUnavailable:
            raise InvalidClientError(description="The client's jwks_uri is unavailable.") from None
        except (JoseError, ValueError, TypeError):
            raise InvalidClientError(
                description="The client's registered keys are unusable."
            ) from None
        try:
            return KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError):
            raise InvalidClientError(
                description="The client's registered keys are unusable."
            ) from None

    def extract_assertion(self, assertion: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        # authlib reads the payload (to find the client) before any signature check: its JSON
        # must not be deep, repeat a claim or carry NUL, which would reach the database.
        try:
            check_compact_jws(assertion, payload=True)
        except InputRefused as exc:
            # authlib allows no backslash or quote in a description: name the problem code.
            raise InvalidClientError(
                description=f"The client assertion is refused: {exc.problem.code}."
            ) from None
        found: tuple[Mapping[str, Any], Mapping[str, Any]] = super().extract_assertion(assertion)
        return found

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Mapping[str, Any]:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGORITHMS)
        except (JoseError, ValueError):
            # Unknown algorithm, no matching key or a bad signature: one answer for all.
            raise InvalidClientError(
                description="The client assertion's signature does not verify."
            ) from None
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: jwt.Claims) -> None:
        super().verify_claims(claims)
        now = int(time.time())
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp > now + ASSERTION_MAX_LIFETIME_S + CLOCK_SKEW_S:
            raise InvalidClientError(
                description=f"The client assertion must expire within {ASSERTION_MAX_LIFETIME_S} s."
            )

    def validate_jti(self, claims: Mapping[str, Any], jti: str) -> bool:
        if not isinstance(jti, str) or not 8 <= len(jti) <= 256:
            return False
        expires_at = datetime.fromtimestamp(int(claims["exp"]) + CLOCK_SKEW_S, UTC)
        remembered: bool = on_loop(
            self.server.store.remember_assertion, str(claims["sub"]), jti, expires_at
        )
        return remembered


class ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [PRIVATE_KEY_JWT]

    def validate_requested_scope(self) -> None:
        requested = set((self.request.payload.scope or "").split())
        if not requested <= self.client.scopes:
            raise InvalidScopeError(description="The client was not registered for that scope.")

    def validate_token_request(self) -> None:
        super().validate_token_request()
        if self.client.kind not in _CONFIDENTIAL:
            raise UnauthorizedClientError(description="Public clients cannot use this grant.")


@dataclass
class BankAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """One per OAuth request: holds that request's store and the current signing key."""

    store: OAuthStore
    issuer: str
    signing_key: ActiveKey
    access_token_ttl_s: int
    issued: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        AuthorizationServer.__init__(self, scopes_supported=None)
        self.register_client_auth_method(PRIVATE_KEY_JWT, PrivateKeyJWT(self))
        self.register_grant(ClientCredentials)
        self.register_grant(AuthorizationCode, [S256Challenge(required=True)])
        self.register_grant(RefreshToken)
        self.register_token_generator("default", self._generate_token)

    def call_store(self, fn: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
        return on_loop(fn, *args, **kwargs)

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/oauth/token"

    def query_client(self, client_id: str) -> RegisteredClient | None:
        if not isinstance(client_id, str) or not client_id or len(client_id) > 128:
            return None
        client: RegisteredClient | None = on_loop(self.store.client, client_id)
        return client

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        # Access tokens are self-contained JWTs; refresh tokens are stored by their grant.
        return None

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, headers

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def _generate_token(
        self,
        grant_type: str,
        client: RegisteredClient,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        if user is not None:
            return self._generate_user_token(client, user, scope or "", include_refresh_token)
        scopes = client.get_allowed_scope(scope).split()
        principal_type = PRINCIPAL_OF_CLIENT[client.kind]
        subject = client.client_id
        token, claims = mint_access_token(
            self.signing_key,
            issuer=self.issuer,
            principal_type=principal_type,
            subject=subject,
            client_id=client.client_id,
            scopes=scopes,
            now=int(time.time()),
            ttl_s=self.access_token_ttl_s,
        )
        self.issued.append({"jti": claims["jti"], "client_id": client.client_id})
        return {
            "token_type": "Bearer",
            "access_token": token,
            "expires_in": self.access_token_ttl_s,
            "scope": " ".join(scopes),
        }

    def _generate_user_token(
        self, client: RegisteredClient, user: GrantUser, scope: str, include_refresh_token: bool
    ) -> dict[str, Any]:
        # The scope was settled when the code was issued; an empty one stays empty (never
        # "everything the client may ask for", which is authlib's default).
        scopes = sorted(set(scope.split()))
        assert user.family_id is not None, "user tokens always belong to a token family"
        token, claims = mint_access_token(
            self.signing_key,
            issuer=self.issuer,
            principal_type=PRINCIPAL_OF_CLIENT[client.kind],
            subject=str(user.account_id),
            client_id=client.client_id,
            scopes=scopes,
            now=int(time.time()),
            ttl_s=self.access_token_ttl_s,
            session_id=user.family_id,
        )
        self.issued.append(
            {"jti": claims["jti"], "client_id": client.client_id, "sid": user.family_id}
        )
        response: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": token,
            "expires_in": self.access_token_ttl_s,
            "scope": " ".join(scopes),
        }
        if include_refresh_token:
            refresh_token = secrets.token_urlsafe(32)
            self.call_store(
                self.store.save_refresh_token,
                refresh_token,
                family_id=user.family_id,
                scope=" ".join(scopes),
            )
            response["refresh_token"] = refresh_token
        return response
