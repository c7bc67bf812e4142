"""The client registry operators manage: register, vet (activate), suspend, reinstate.

Rules: confidential clients (partners, data sources) register public keys, never secrets; a
partner needs at least one unexpired certification (Pマーク, ISMS, ...) to be activated; any
listed certification that has expired blocks activation; suspending revokes every token the
client holds at once (`tokens_not_before`). Every change is appended to the audit log's
"clients" stream in the same transaction, with who made it and why.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bank.audit import AuditLog, DetailValue
from bank.audit import Principal as AuditPrincipal
from bank.auth.jwks import check_jwks_uri
from bank.auth.models import ClientKind, ClientStatus, OAuthClient
from bank.auth.principals import PRINCIPAL_OF_CLIENT, SCOPES
from bank.auth.redirects import redirect_uri_matches
from bank.errors import DomainError, ProblemType
from bank.logs import get_logger

log = get_logger("bank.auth")

AUDIT_STREAM = "clients"

_TRANSITIONS = {
    (ClientStatus.PENDING, ClientStatus.ACTIVE),
    (ClientStatus.ACTIVE, ClientStatus.SUSPENDED),
    (ClientStatus.PENDING, ClientStatus.SUSPENDED),
    (ClientStatus.SUSPENDED, ClientStatus.ACTIVE),
}


class InvalidRegistration(DomainError):
    problem = ProblemType(
        code="invalid-client-registration",
        status=422,
        title="Invalid client registration",
        description="The client registration breaks a rule; the detail says which.",
        title_ja="クライアントの登録内容に誤りがあります",
        description_ja=(
            "クライアントの登録内容が規則に反しています。detail がどの規則かを示します。"
        ),
    )


class ClientNotFound(DomainError):
    problem = ProblemType(
        code="client-not-found",
        status=404,
        title="Client not found",
        description="No such client.",
        title_ja="クライアントが見つかりません",
        description_ja="そのようなクライアントはありません。",
    )


class StatusChangeRefused(DomainError):
    problem = ProblemType(
        code="client-status-conflict",
        status=409,
        title="Client status change refused",
        description="The client cannot move to that status from where it is, or is not vetted.",
        title_ja="クライアントの状態を変更できません",
        description_ja="今の状態からその状態には移れないか、クライアントの審査が済んでいません。",
    )


class OwnConsoleSuspension(DomainError):
    problem = ProblemType(
        code="client-is-callers-console",
        status=409,
        title="Cannot suspend the caller's own console",
        description=(
            "Suspending the operators' console this request comes through would revoke every "
            "operator token at once, this one included, and only the command line could undo "
            "it. Use another console client, or `bank clients suspend` on the server."
        ),
        title_ja="呼び出し元の管理コンソールは停止できません",
        description_ja=(
            "このリクエストが通っている運用者コンソールを停止すると、このトークンを含むすべての"
            "運用者トークンが一度に取り消され、コマンドラインからしか戻せません。別のコンソール"
            "クライアントか、サーバー上の `bank clients suspend` を使ってください。"
        ),
    )


@dataclass(frozen=True)
class Attribution:
    """Who makes a registry change and why, for the audit log."""

    principal: AuditPrincipal
    reason: str | None = None
    via_client: str | None = None  # the console an operator's request came through

    def details(self, **counts_and_ids: DetailValue) -> dict[str, DetailValue]:
        via: dict[str, DetailValue] = {}
        if self.via_client is not None:
            via["via_client"] = self.via_client
        return {**counts_and_ids, **via}


# For callers that do not say who they are (the demo seed, test factories): visible as such.
UNATTRIBUTED = Attribution(AuditPrincipal(type="system", id="unattributed"))

_ACTIONS = {
    (ClientStatus.PENDING, ClientStatus.ACTIVE): "client.activated",
    (ClientStatus.SUSPENDED, ClientStatus.ACTIVE): "client.reactivated",
    (ClientStatus.ACTIVE, ClientStatus.SUSPENDED): "client.suspended",
    (ClientStatus.PENDING, ClientStatus.SUSPENDED): "client.suspended",
}


@dataclass(frozen=True)
class Certification:
    name: str  # e.g. "Pマーク", "ISMS (ISO/IEC 27001)"
    number: str
    expires_on: date

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "number": self.number, "expires_on": self.expires_on.isoformat()}


@dataclass(frozen=True)
class Registration:
    kind: ClientKind
    name: str
    scopes: tuple[str, ...]
    corporate_number: str | None = None
    contact_email: str | None = None
    certifications: tuple[Certification, ...] = ()
    redirect_uris: tuple[str, ...] = ()
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    # Data sources only: transit operator slugs or 8-digit insurer numbers (保険者番号).
    feeds: tuple[str, ...] = ()


_FEED = re.compile(r"^(?:[a-z][a-z0-9-]{1,39}|[0-9]{8})$")


def corporate_number_is_valid(number: str) -> bool:
    """法人番号: 13 digits; the first is a check digit over the other twelve (NTA's rule)."""
    if len(number) != 13 or not number.isdigit():
        return False
    body = [int(digit) for digit in number[1:]]
    weighted = sum(
        digit * (1 if position % 2 == 1 else 2)
        for position, digit in enumerate(reversed(body), start=1)
    )
    return int(number[0]) == 9 - weighted % 9


def check_public_jwks(jwks: dict[str, Any]) -> None:
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise InvalidRegistration("jwks must be a JWK Set with at least one key.")
    for key in keys:
        if not isinstance(key, dict):
            raise InvalidRegistration("jwks holds a value that is not a JWK.")
        if any(private in key for private in ("d", "p", "q", "dp", "dq", "qi", "oth", "k")):
            raise InvalidRegistration("jwks must hold public keys only.")
        if key.get("kty") not in {"EC", "RSA", "OKP"}:
            raise InvalidRegistration("jwks keys must be EC, RSA or OKP.")
    try:
        KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError):
        raise InvalidRegistration("jwks does not parse as a JWK Set.") from None


def validate_registration(registration: Registration, *, allow_http_loopback: bool) -> None:
    allowed = SCOPES[PRINCIPAL_OF_CLIENT[registration.kind]]
    unknown = set(registration.scopes) - set(allowed)
    if unknown:
        raise InvalidRegistration(
            f"Scopes not available to a {registration.kind.value} client: "
            + " ".join(sorted(unknown))
        )
    if not registration.name.strip():
        raise InvalidRegistration("name must not be empty.")
    if registration.corporate_number is not None and not corporate_number_is_valid(
        registration.corporate_number
    ):
        raise InvalidRegistration("corporate_number is not a valid 13-digit 法人番号.")
    confidential = registration.kind in {ClientKind.PARTNER, ClientKind.SOURCE}
    if confidential:
        if (registration.jwks is None) == (registration.jwks_uri is None):
            raise InvalidRegistration("Register exactly one of jwks or jwks_uri.")
        if registration.corporate_number is None:
            raise InvalidRegistration("Partners and data sources need a corporate_number.")
    elif registration.jwks is not None or registration.jwks_uri is not None:
        raise InvalidRegistration("Public clients have no keys.")
    if registration.jwks is not None:
        check_public_jwks(registration.jwks)
    if registration.jwks_uri is not None:
        try:
            check_jwks_uri(registration.jwks_uri, allow_http_loopback=allow_http_loopback)
        except ValueError as exc:
            raise InvalidRegistration(str(exc)) from None
    if registration.feeds and registration.kind is not ClientKind.SOURCE:
        raise InvalidRegistration("Only data sources have feeds.")
    for feed in registration.feeds:
        if not _FEED.match(feed):
            raise InvalidRegistration(
                "feeds are transit operator slugs (lowercase, 2-40 characters) or 8-digit "
                "insurer numbers."
            )
    for uri in registration.redirect_uris:
        if not redirect_uri_is_acceptable(uri):
            raise InvalidRegistration(
                "redirect URIs must be https, loopback http, or a private-use scheme (RFC 8252)."
            )


def redirect_uri_is_acceptable(uri: str) -> bool:
    parts = urlsplit(uri)
    if parts.fragment:
        return False
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme == "http" and parts.hostname in {"127.0.0.1", "::1"}:
        return True  # RFC 8252 loopback redirect for native apps
    # RFC 8252 private-use scheme: a reverse domain name such as jp.city.bank.app:/callback
    return "." in parts.scheme and not parts.netloc


class ClientRegistry:
    def __init__(self, session: AsyncSession, *, allow_http_loopback: bool = False) -> None:
        self._session = session
        self._allow_http_loopback = allow_http_loopback

    async def register(
        self, registration: Registration, *, by: Attribution = UNATTRIBUTED
    ) -> OAuthClient:
        """Add a client in `pending`; operators activate it after vetting. Audited."""
        validate_registration(registration, allow_http_loopback=self._allow_http_loopback)
        client = OAuthClient(
            client_id=f"{registration.kind.value.replace('_', '-')}-{secrets.token_urlsafe(12)}",
            kind=registration.kind.value,
            name=registration.name.strip(),
            corporate_number=registration.corporate_number,
            contact_email=registration.contact_email,
            certifications=[c.as_json() for c in registration.certifications],
            redirect_uris=list(registration.redirect_uris),
            jwks=registration.jwks,
            jwks_uri=registration.jwks_uri,
            scopes=sorted(set(registration.scopes)),
            feeds=sorted(set(registration.feeds)),
            status=ClientStatus.PENDING.value,
        )
        self._session.add(client)
        await self._session.flush()
        await AuditLog(self._session).append(
            AUDIT_STREAM,
            principal=by.principal,
            action="client.registered",
            target=client.client_id,
            reason=by.reason,
            details=by.details(kind=client.kind, scopes=list(client.scopes)),
        )
        log.info("auth.client_registered", client_id=client.client_id, kind=client.kind)
        return client

    async def get(self, client_id: str, *, for_update: bool = False) -> OAuthClient:
        query = select(OAuthClient).where(OAuthClient.client_id == client_id)
        client = await self._session.scalar(query.with_for_update() if for_update else query)
        if client is None:
            raise ClientNotFound(f"No client {client_id!r}.")
        return client

    async def feeds(self, client_id: str) -> list[str]:
        """What a source client pushes for (operators, insurers); none for an unknown client."""
        feeds = await self._session.scalar(
            select(OAuthClient.feeds).where(OAuthClient.client_id == client_id)
        )
        return list(feeds or [])

    async def list(self) -> list[OAuthClient]:
        return list(
            await self._session.scalars(select(OAuthClient).order_by(OAuthClient.created_at))
        )

    async def add_redirect_uris(
        self, client_id: str, uris: tuple[str, ...], *, by: Attribution = UNATTRIBUTED
    ) -> OAuthClient:
        """Register more redirect URIs for a residents' app or console; the ones it has stay.
        Each must be acceptable as at registration (InvalidRegistration). Audited when any is
        new; a URI a registered one already admits (itself, or a loopback one on another port:
        bank.auth.redirects) changes nothing."""
        client = await self.get(client_id, for_update=True)
        if client.kind not in {ClientKind.RESIDENT_APP.value, ClientKind.OPERATOR_CONSOLE.value}:
            raise InvalidRegistration("Only residents' apps and consoles have redirect URIs.")
        new = [
            uri
            for uri in dict.fromkeys(uris)
            if not any(redirect_uri_matches(known, uri) for known in client.redirect_uris)
        ]
        if not new:
            return client
        for uri in new:
            if not redirect_uri_is_acceptable(uri):
                raise InvalidRegistration(
                    "redirect URIs must be https, loopback http, or a private-use scheme "
                    "(RFC 8252)."
                )
        client.redirect_uris = [*client.redirect_uris, *new]
        await self._session.flush()
        await AuditLog(self._session).append(
            AUDIT_STREAM,
            principal=by.principal,
            action="client.redirects_added",
            target=client_id,
            reason=by.reason,
            details=by.details(redirect_uris=new),
        )
        log.info("auth.client_redirects_added", client_id=client_id, added=len(new))
        return client

    async def set_status(
        self,
        client_id: str,
        target: ClientStatus,
        *,
        today: date | None = None,
        caller_client_id: str | None = None,
        by: Attribution = UNATTRIBUTED,
    ) -> OAuthClient:
        """Move a client along pending → active → suspended (→ active again after review).

        `caller_client_id` is the client an API request came through: it may not suspend
        itself (OwnConsoleSuspension). The CLI passes none: the break-glass way to do it.
        The change and its audit entry (stream "clients", `by`) are one transaction.
        """
        if target is ClientStatus.SUSPENDED and client_id == caller_client_id:
            raise OwnConsoleSuspension(
                "This request comes through that client: suspending it would sign every "
                "operator out. Use another console client or `bank clients suspend`."
            )
        client = await self.get(client_id, for_update=True)
        current = ClientStatus(client.status)
        if (current, target) not in _TRANSITIONS:
            raise StatusChangeRefused(f"A {current.value} client cannot become {target.value}.")
        if target is ClientStatus.ACTIVE:
            _check_vetted(client, today or datetime.now(UTC).date())
        client.status = target.value
        if target is ClientStatus.SUSPENDED:
            # Every token issued so far stops working at once.
            # `iat` has whole seconds: start at the next one, so a token from the very second
            # of the suspension cannot come back to life if the client is reactivated.
            now = datetime.now(UTC)
            client.tokens_not_before = now.replace(microsecond=0) + timedelta(seconds=1)
        await self._session.flush()
        await AuditLog(self._session).append(
            AUDIT_STREAM,
            principal=by.principal,
            action=_ACTIONS[(current, target)],
            target=client_id,
            reason=by.reason,
            details=by.details(**{"from": current.value, "to": target.value}),
        )
        log.info("auth.client_status_changed", client_id=client_id, status=target.value)
        return client


def _check_vetted(client: OAuthClient, today: date) -> None:
    expired = [
        c["name"] for c in client.certifications if date.fromisoformat(c["expires_on"]) < today
    ]
    if expired:
        raise StatusChangeRefused("Expired certification(s): " + ", ".join(sorted(expired)) + ".")
    if client.kind == ClientKind.PARTNER.value and not client.certifications:
        raise StatusChangeRefused("A partner needs a current certification (Pマーク, ISMS, ...).")
