"""Who calls: principal types, the audience of each one's tokens, the scopes they may hold."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bank.auth.models import ClientKind


class PrincipalType(StrEnum):
    RESIDENT = "resident"
    PARTNER = "partner"
    SOURCE = "source"
    OPERATOR = "operator"


# Each principal type has its own API and audience: a token minted for one is refused by the others.
AUDIENCES: dict[PrincipalType, str] = {
    PrincipalType.RESIDENT: "urn:city-bank:api:resident",
    PrincipalType.PARTNER: "urn:city-bank:api:partner",
    PrincipalType.SOURCE: "urn:city-bank:api:ingest",
    PrincipalType.OPERATOR: "urn:city-bank:api:admin",
}

SCOPES: dict[PrincipalType, dict[str, str]] = {
    PrincipalType.RESIDENT: {
        "account": "Manage your own account and sessions",
        "records:read": "Read your own records",
        "records:write": "Deposit your own records (steps)",
        "consents": "See and decide partner requests",
        "points": "See and redeem wellness points",
    },
    PrincipalType.PARTNER: {
        "partner:requests": "Publish consent requests from approved templates",
        "partner:data": "Fetch data released by live consents",
    },
    PrincipalType.SOURCE: {
        "ingest:transit": "Push transit taps for linked residents",
        "ingest:checkups": "Push health checkup results for linked residents",
    },
    PrincipalType.OPERATOR: {
        "admin:clients": "Register, vet and suspend clients",
        "admin:keys": "Rotate keys",
        "ethics:review": "Review partner templates (data ethics committee)",
    },
}

PRINCIPAL_OF_CLIENT: dict[ClientKind, PrincipalType] = {
    ClientKind.RESIDENT_APP: PrincipalType.RESIDENT,
    ClientKind.PARTNER: PrincipalType.PARTNER,
    ClientKind.SOURCE: PrincipalType.SOURCE,
    ClientKind.OPERATOR_CONSOLE: PrincipalType.OPERATOR,
}


def all_scopes() -> list[str]:
    return sorted(scope for scopes in SCOPES.values() for scope in scopes)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request, as its validated access token describes it."""

    type: PrincipalType
    subject: str
    client_id: str
    scopes: frozenset[str]
    token_id: str
    issued_at: int
    expires_at: int
    session_id: str | None = None

    @property
    def audience(self) -> str:
        return AUDIENCES[self.type]
