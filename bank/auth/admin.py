"""The operators' API over the client registry: list, register, inspect, activate and suspend.

Every rule (法人番号, public keys only, scopes per kind, redirect URIs, vetting, transitions)
lives in `bank.auth.clients`; this module only translates HTTP to registry calls and back.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.openapi.spec import Example
from litestar.params import JSONBody, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from bank.audit import Principal as AuditPrincipal
from bank.audit.errors import InvalidAuditEntry
from bank.auth.clients import (
    Attribution,
    Certification,
    ClientNotFound,
    ClientRegistry,
    InvalidRegistration,
    OwnConsoleSuspension,
    Registration,
    StatusChangeRefused,
)
from bank.auth.guards import CurrentPrincipal, requires, security
from bank.auth.models import ClientKind, ClientStatus, OAuthClient
from bank.auth.principals import Principal, PrincipalType, all_scopes
from bank.http.openapi import example
from bank.http.problems import problem_responses
from bank.http.transaction import DbSession
from bank.logs import get_logger

log = get_logger("bank.auth")

# JWK members that carry private or symmetric key material (RFC 7518 §6).
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
_Uri = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
_Scope = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=64, extra_json_schema={"extra": {"enum": all_scopes()}}),
]
_REASON = "Free text kept in the audit log (stream `clients`) with the operator; never logged."
# What the registry makes (bank.auth.clients): the kind, then a random part.
CLIENT_ID_PATTERN = r"^(resident-app|partner|source|operator-console)-[A-Za-z0-9_-]{1,64}$"
ClientIdParameter = Annotated[
    str,
    PathParameter(
        pattern=CLIENT_ID_PATTERN,
        description="The client's id, as registration answered it.",
        examples=[Example(summary="A partner", value="partner-Sapporo-Wellness-4F7hD")],
    ),
]


class ClientCertification(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, examples=["Pマーク"])]
    number: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    expires_on: date


class ClientCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: ClientKind
    name: _Text
    scopes: Annotated[
        list[_Scope],
        msgspec.Meta(min_length=1, max_length=20, description="Scopes the client may request."),
    ]
    corporate_number: (
        Annotated[
            str,
            msgspec.Meta(
                description="法人番号, 13 digits, the first a check digit over the other twelve "
                "(the National Tax Agency's rule); required for partners and data sources.",
                extra_json_schema={"extra": {"pattern": r"^[1-9][0-9]{12}$"}},
            ),
        ]
        | None
    ) = None
    contact_email: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=254,
                pattern=r"^[^@\s]+@[^@\s]+$",
                description="The company's contact desk, not a person's address.",
            ),
        ]
        | None
    ) = None
    certifications: Annotated[
        list[ClientCertification],
        msgspec.Meta(max_length=20, description="A partner needs a current one to be activated."),
    ] = []
    redirect_uris: Annotated[
        list[_Uri],
        msgspec.Meta(
            max_length=10, description="https, loopback http, or a private-use scheme (RFC 8252)."
        ),
    ] = []
    jwks: (
        Annotated[
            dict[str, Any],
            msgspec.Meta(description="Public JWK Set (partners, sources): no private members."),
        ]
        | None
    ) = None
    jwks_uri: (
        Annotated[str, msgspec.Meta(max_length=2000, description="https URL of the JWK Set.")]
        | None
    ) = None
    reason: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=500, description="Why. " + _REASON)]
        | None
    ) = None


class ClientStatusChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    status: Annotated[
        ClientStatus,
        msgspec.Meta(description="`active` after vetting, or `suspended` (revokes its tokens)."),
    ]
    reason: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=500,
            description="Why the status changes. " + _REASON,
        ),
    ]


class ClientRead(msgspec.Struct, frozen=True):
    client_id: str
    kind: ClientKind
    name: str
    corporate_number: str | None
    contact_email: str | None
    certifications: list[ClientCertification]
    redirect_uris: list[str]
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    scopes: list[str]
    status: ClientStatus
    created_at: datetime
    updated_at: datetime


def _registration(data: ClientCreate) -> Registration:
    return Registration(
        kind=data.kind,
        name=data.name,
        scopes=tuple(data.scopes),
        corporate_number=data.corporate_number,
        contact_email=data.contact_email,
        certifications=tuple(
            Certification(name=c.name, number=c.number, expires_on=c.expires_on)
            for c in data.certifications
        ),
        redirect_uris=tuple(data.redirect_uris),
        jwks=data.jwks,
        jwks_uri=data.jwks_uri,
    )


def _public_jwks(jwks: dict[str, Any] | None) -> dict[str, Any] | None:
    # The registry refuses private keys; stripping them again keeps this view safe by itself.
    if jwks is None:
        return None
    keys = [
        {member: value for member, value in key.items() if member not in _PRIVATE_JWK_MEMBERS}
        for key in jwks.get("keys", [])
        if isinstance(key, dict) and key.get("kty") != "oct"
    ]
    return {"keys": keys}


def _read(client: OAuthClient) -> ClientRead:
    return ClientRead(
        client_id=client.client_id,
        kind=ClientKind(client.kind),
        name=client.name,
        corporate_number=client.corporate_number,
        contact_email=client.contact_email,
        certifications=[
            ClientCertification(
                name=c["name"], number=c["number"], expires_on=date.fromisoformat(c["expires_on"])
            )
            for c in client.certifications
        ],
        redirect_uris=list(client.redirect_uris),
        jwks=_public_jwks(client.jwks),
        jwks_uri=client.jwks_uri,
        scopes=list(client.scopes),
        status=ClientStatus(client.status),
        created_at=client.created_at,
        updated_at=client.updated_at,
    )


def _attribution(principal: Principal, reason: str | None) -> Attribution:
    return Attribution(
        principal=AuditPrincipal(type="operator", id=principal.subject),
        reason=reason,
        via_client=principal.client_id,
    )


def _registry(db_session: AsyncSession, state: State) -> ClientRegistry:
    # Plain-http jwks_uri on loopback only for a developer's own partner stub.
    return ClientRegistry(
        db_session, allow_http_loopback=state.settings.environment == "development"
    )


class ClientAdminController(Controller):
    path = "/v1/admin/clients"
    tags = ("admin",)
    guards = [requires(PrincipalType.OPERATOR, "admin:clients")]  # noqa: RUF012 - Litestar's API
    security = security("admin:clients")

    @get(
        "/",
        operation_id="ListClients",
        summary="Every registered client, newest first",
    )
    async def list_clients(
        self,
        db_session: DbSession,
        state: State,
        status: Annotated[
            ClientStatus | None, QueryParameter(description="Only clients in this status.")
        ] = None,
        kind: Annotated[
            ClientKind | None, QueryParameter(description="Only clients of this kind.")
        ] = None,
    ) -> list[ClientRead]:
        clients = await _registry(db_session, state).list()
        # The registry lists oldest first; a registry holds dozens of clients, not thousands.
        return [
            _read(client)
            for client in reversed(clients)
            if (status is None or client.status == status.value)
            and (kind is None or client.kind == kind.value)
        ]

    @post(
        "/",
        operation_id="RegisterClient",
        summary="Register a client; it stays pending until an operator activates it",
        status_code=201,
        responses=problem_responses(InvalidRegistration, InvalidAuditEntry),
    )
    async def register(
        self,
        data: JSONBody[ClientCreate],
        principal: CurrentPrincipal,
        db_session: DbSession,
        state: State,
    ) -> ClientRead:
        client = await _registry(db_session, state).register(
            _registration(data), by=_attribution(principal, data.reason)
        )
        log.info(
            "admin.client_registered",
            client_id=client.client_id,
            kind=client.kind,
            operator=principal.subject,
        )
        return _read(client)

    @get(
        "/{client_id:str}",
        operation_id="GetClient",
        summary="One client",
        responses=problem_responses(ClientNotFound),
    )
    async def get_client(
        self, client_id: ClientIdParameter, db_session: DbSession, state: State
    ) -> ClientRead:
        return _read(await _registry(db_session, state).get(client_id))

    @post(
        "/{client_id:str}/status",
        operation_id="ChangeClientStatus",
        summary="Activate a vetted client, or suspend one (its tokens stop working at once)",
        description="The operators' console a request comes through cannot suspend itself "
        "(409 `client-is-callers-console`): that would sign every operator out. Use another "
        "console client, or `bank clients suspend` on the server as a break-glass.",
        status_code=200,
        responses=problem_responses(
            ClientNotFound, StatusChangeRefused, OwnConsoleSuspension, InvalidAuditEntry
        ),
    )
    async def change_status(
        self,
        client_id: ClientIdParameter,
        data: JSONBody[ClientStatusChange],
        principal: CurrentPrincipal,
        db_session: DbSession,
        state: State,
    ) -> ClientRead:
        registry = _registry(db_session, state)
        previous = (await registry.get(client_id)).status
        client = await registry.set_status(
            client_id,
            data.status,
            caller_client_id=principal.client_id,
            by=_attribution(principal, data.reason),
        )
        await db_session.refresh(client, ["updated_at"])  # set by the database on update
        log.info(
            "admin.client_status_changed",
            client_id=client_id,
            previous=previous,
            status=client.status,
            operator=principal.subject,
        )
        return _read(client)


# --- examples for the OpenAPI document (sent as they are by tests/bank/test_openapi_examples.py)

_EXAMPLE_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "IcksJMXVpBhSPH3TurGHu451U7kh2F4YpmtyCJ90pUg",
    "y": "SnW5Xtw8Gzak0OUNvJfzuGKnq0n6GM9iZSrK59TXrg4",
    "kid": "wellness-2026-11",
}
_PMARK = ClientCertification(name="Pマーク", number="17000123", expires_on=date(2029, 3, 31))
example(
    ClientCreate,
    "partner",
    "A partner, vetted (a current Pマーク), with its public key",
    ClientCreate(
        kind=ClientKind.PARTNER,
        name="Sapporo Wellness KK",
        scopes=["partner:data"],
        corporate_number="7000012050002",
        contact_email="privacy-desk@wellness.example.jp",
        certifications=[_PMARK],
        jwks={"keys": [_EXAMPLE_JWK]},
        reason="Application 2026-117 received by the data trust desk.",
    ),
)
example(
    ClientStatusChange,
    "activate",
    "Activate after vetting",
    ClientStatusChange(
        status=ClientStatus.ACTIVE, reason="Vetted: Pマーク checked, contract signed 2026-11-20."
    ),
)
_CREATED = datetime(2026, 11, 20, 2, 14, 5, tzinfo=UTC)
example(
    ClientRead,
    "partner",
    "A partner",
    ClientRead(
        client_id="partner-Sapporo-Wellness-4F7hD",
        kind=ClientKind.PARTNER,
        name="Sapporo Wellness KK",
        corporate_number="7000012050002",
        contact_email="privacy-desk@wellness.example.jp",
        certifications=[_PMARK],
        redirect_uris=[],
        jwks={"keys": [_EXAMPLE_JWK]},
        jwks_uri=None,
        scopes=["partner:data"],
        status=ClientStatus.ACTIVE,
        created_at=_CREATED,
        updated_at=_CREATED,
    ),
)
