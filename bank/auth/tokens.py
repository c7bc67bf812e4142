"""RFC 9068 JWT access tokens: minted by the authorization server, checked by every API.

Validation is deliberately narrow: exactly ES256, `typ: at+jwt`, a `kid` we published, and every
claim the bank puts in (`iss`, `aud`, `exp`, `nbf`, `iat`, `jti`, `sub`, `client_id`, `scope`,
`ptype`). Anything else is an invalid token.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from bank.auth.errors import InvalidToken
from bank.auth.keys import SIGNING_ALG, ActiveKey
from bank.auth.principals import AUDIENCES, Principal, PrincipalType
from bank.http.json_guard import InputRefused, check_compact_jws

TOKEN_TYPE = "at+jwt"
# Tolerated clock difference between the authorization server and an API replica.
LEEWAY_SECONDS = 10
_REQUIRED = ("iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "scope", "ptype")


def mint_access_token(
    key: ActiveKey,
    *,
    issuer: str,
    principal_type: PrincipalType,
    subject: str,
    client_id: str,
    scopes: list[str],
    now: int,
    ttl_s: int,
    session_id: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """Sign an access token; returns it with its claims (for auditing, never for logs)."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": AUDIENCES[principal_type],
        "exp": now + ttl_s,
        "nbf": now,
        "iat": now,
        "jti": secrets.token_urlsafe(18),
        "client_id": client_id,
        "scope": " ".join(sorted(scopes)),
        "ptype": principal_type.value,
    }
    if session_id is not None:
        claims["sid"] = session_id
    header = {"alg": SIGNING_ALG, "typ": TOKEN_TYPE, "kid": key.kid}
    return jwt.encode(header, claims, key.key, algorithms=[SIGNING_ALG]), claims


def token_kid(token: str) -> str:
    """The `kid` of a well-formed token header, before any signature check."""
    try:
        raw = token.encode("ascii")
        # The header is decoded before the signature is checked: guard its JSON first. (The
        # payload is decoded only once the bank's own signature verified, so it is ours.)
        check_compact_jws(raw, payload=False)
        header = jws.extract_compact(raw).headers()
    except (JoseError, UnicodeError, ValueError, InputRefused):
        raise InvalidToken("The token is not a compact JWS.") from None
    if header.get("alg") != SIGNING_ALG:
        raise InvalidToken("The token's algorithm is not accepted.")
    if header.get("typ") != TOKEN_TYPE:
        raise InvalidToken("The token is not an access token (typ must be at+jwt).")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidToken("The token names no signing key.")
    return kid


def validate_access_token(
    token: str,
    *,
    key_for: Callable[[str], ECKey | None],
    issuer: str,
    now: int,
) -> Principal:
    """Check signature and claims; the caller then checks audience, scopes and revocation."""
    kid = token_kid(token)
    key = key_for(kid)
    if key is None:
        raise InvalidToken("The token was signed by an unknown key.")
    try:
        decoded = jwt.decode(token, key, algorithms=[SIGNING_ALG])
    except (JoseError, ValueError):
        raise InvalidToken("The token's signature does not verify.") from None
    claims = decoded.claims
    if any(name not in claims for name in _REQUIRED):
        raise InvalidToken("The token lacks required claims.")
    registry = jwt.JWTClaimsRegistry(
        now=now, leeway=LEEWAY_SECONDS, iss={"essential": True, "value": issuer}
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise InvalidToken(_claim_problem(exc)) from None
    try:
        principal_type = PrincipalType(claims["ptype"])
    except ValueError:
        raise InvalidToken("The token names an unknown principal type.") from None
    if claims["aud"] != AUDIENCES[principal_type]:
        raise InvalidToken("The token's audience does not match its principal type.")
    return Principal(
        type=principal_type,
        subject=str(claims["sub"]),
        client_id=str(claims["client_id"]),
        scopes=frozenset(str(claims["scope"]).split()),
        token_id=str(claims["jti"]),
        issued_at=int(claims["iat"]),
        expires_at=int(claims["exp"]),
        session_id=claims.get("sid"),
    )


def _claim_problem(exc: JoseError) -> str:
    if type(exc).__name__ == "ExpiredTokenError":
        return "The token has expired."
    # joserfc's descriptions name the claim, never its value ("Invalid claim: 'iss'").
    return f"The token's claims are invalid: {exc.description}."


class VerifiedTokens:
    """Access tokens whose signature and claims this process has checked, until they expire.

    A signed token cannot change: once it verified, it verifies until its `exp`, so checking its
    signature again on every request (most of the guard's remaining cost) buys nothing. Standing
    (suspension, revocation, sign-out) is not part of this: the guard asks for it every time.
    Entries are keyed by a digest of the token, and the oldest go first when the cache is full.
    """

    def __init__(self, max_entries: int = 50_000) -> None:
        self._principals: dict[bytes, Principal] = {}
        self._max_entries = max_entries

    def get(self, token: str, now: int) -> Principal | None:
        key = _digest(token)
        principal = self._principals.get(key)
        if principal is not None and now >= principal.expires_at:
            del self._principals[key]  # expired: the full check gives the caller the reason
            return None
        return principal

    def remember(self, token: str, principal: Principal) -> None:
        if len(self._principals) >= self._max_entries:
            del self._principals[next(iter(self._principals))]
        self._principals[_digest(token)] = principal


def _digest(token: str) -> bytes:
    return hashlib.blake2b(token.encode(), digest_size=16).digest()
