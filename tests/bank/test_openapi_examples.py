"""Every request example in the checked-in OpenAPI document is accepted by the API as it is.

The test builds the world the examples describe, then sends each example (bodies, and the
query and path parameters' examples) with a real token of the right principal, in the order a
resident's life takes: link the card and the membership before the sources push for them, erase
last. Nothing in a body is changed, with three exceptions that cannot be printed in a document
because they are one-time or signed: a client assertion (signed with the source's key when
sent), the JWT an introspection asks about (a real access token), and the path ids of things
the test made. The authorization code, its PKCE verifier and the refresh token of the examples
are the ones stored for the example app, so those requests go as printed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from litestar import Litestar
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.clients import Registration
from bank.auth.models import (
    AuthorizationCode,
    ClientKind,
    OAuthClient,
    RefreshToken,
    TokenFamily,
)
from bank.auth.passwords import hash_password
from bank.auth.principals import PrincipalType
from bank.crypto.tokens import hash_token
from bank.identity.models import Account
from bank.vault import examples as vault_examples
from tests.bank.auth.factories import ISSUER, add_client, assertion
from tests.bank.vault.conftest import Clients, Resident, Residents, _minter, _Registrar

T = TypeVar("T")
DOCUMENT: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "openapi" / "openapi.json").read_text(encoding="utf-8")
)
FORM = "application/x-www-form-urlencoded"
# Operations in the order the world needs them (the rest follow in the document's order).
FIRST = (
    "LinkCardOrMembership",
    "PushSteps",
    "PushTransitTaps",
    "PushCheckups",
    "RegisterClient",
    "ChangeClientStatus",
    "IssueToken",
)
LAST = ("Unlink", "ChangePassword", "SignOut", "EraseMe")
# What each principal's examples are sent as, by the operation's first security scope.
_RESIDENT_SCOPES = {"records:read", "records:write", "account"}


def _operations() -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        operation["operationId"]: (method.upper(), path, operation)
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
    }


def _ordered(operation_ids: list[str]) -> list[str]:
    rest = [o for o in operation_ids if o not in FIRST and o not in LAST]
    return [*FIRST, *rest, *LAST]


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _form_example(operation_id: str, name: str) -> dict[str, str]:
    _, _, operation = _operations()[operation_id]
    value: dict[str, str] = operation["requestBody"]["content"][FORM]["examples"][name]["value"]
    return value


class World:
    """The residents, sources, operator and app the examples speak of, as real accounts and
    registrations whose tokens the app accepts."""

    def __init__(self, app: Litestar, db_session: AsyncSession) -> None:
        self.app = app
        self.db = db_session
        self.ids: dict[str, str] = {}

    async def write(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        result = await work(self.db)
        await self.db.commit()  # releases the savepoint: the app's requests see it
        return result

    async def build(self) -> None:
        self.registrar = _Registrar(self.write, await _minter(self.app, self.write))
        residents = Residents(self.registrar, self.app.state.account_secrets)
        # One resident for the records, one to change a password, one to erase.
        self.resident = await self._with_example_password(await residents.new())
        self.changer = await self._with_example_password(await residents.new())
        self.eraser = await self._with_example_password(await residents.new())
        source = await Clients(self.registrar, PrincipalType.SOURCE).new(
            "ingest:transit",
            "ingest:checkups",
            feeds=(vault_examples.SUBWAY, vault_examples.INSURER_NUMBER),
        )
        self.source_headers = source.headers("ingest:transit", "ingest:checkups")
        console = await self.registrar.register(
            Registration(
                kind=ClientKind.OPERATOR_CONSOLE,
                name="Operators' console",
                scopes=("admin:clients",),
                redirect_uris=("https://console.bank.example.jp/oauth/callback",),
            )
        )
        self.operator_headers = self.registrar.minter.headers(
            PrincipalType.OPERATOR,
            subject=str(uuid.uuid4()),
            client_id=console,
            scopes=("admin:clients",),
        )
        await self._example_app()
        self.oauth_source, self.oauth_key = await self.write(
            lambda s: add_client(s, kind=ClientKind.SOURCE, scopes=("ingest:transit",))
        )

    async def _with_example_password(self, resident: Resident) -> Resident:
        password_hash = hash_password(vault_examples.EXAMPLE_PASSWORD)
        await self.write(
            lambda s: s.execute(
                update(Account).where(Account.id == resident.id).values(password_hash=password_hash)
            )
        )
        return resident

    async def _example_app(self) -> None:
        """The residents' app of the OAuth examples, with the code and the refresh token they
        print stored for the resident."""
        code = _form_example("IssueToken", "authorization_code")
        refresh = _form_example("IssueToken", "refresh_token")
        now = datetime.now(UTC)

        async def work(session: AsyncSession) -> None:
            session.add(
                OAuthClient(
                    client_id=code["client_id"],
                    kind=ClientKind.RESIDENT_APP.value,
                    name="Sapporo Health app (example)",
                    redirect_uris=[code["redirect_uri"]],
                    scopes=sorted(_RESIDENT_SCOPES),
                    status="active",
                )
            )
            for family_id in ("example-code-family", "example-refresh-family"):
                session.add(
                    TokenFamily(
                        id=family_id,
                        account_id=self.resident.id,
                        client_id=code["client_id"],
                        expires_at=now + timedelta(days=90),
                    )
                )
            await session.flush()
            session.add(
                AuthorizationCode(
                    code_hash=hash_token(code["code"]),
                    family_id="example-code-family",
                    client_id=code["client_id"],
                    account_id=self.resident.id,
                    redirect_uri=code["redirect_uri"],
                    scope="account records:read records:write",
                    code_challenge=_s256(code["code_verifier"]),
                    code_challenge_method="S256",
                    expires_at=now + timedelta(minutes=5),
                )
            )
            session.add(
                RefreshToken(
                    token_hash=hash_token(refresh["refresh_token"]),
                    family_id="example-refresh-family",
                    scope="account records:read records:write",
                    expires_at=now + timedelta(days=30),
                )
            )

        await self.write(work)

    def headers(self, operation_id: str, operation: dict[str, Any]) -> dict[str, str]:
        scopes = {s for need in operation.get("security", []) for s in need.get("oauth2", [])}
        if not scopes:
            return {}
        if operation_id == "ChangePassword":
            return self.changer.headers()
        if operation_id == "EraseMe":
            return self.eraser.headers()
        if scopes <= _RESIDENT_SCOPES:
            return self.resident.headers()
        if scopes <= {"ingest:transit", "ingest:checkups"}:
            return self.source_headers
        return self.operator_headers

    def path(self, path: str) -> str:
        return path.format(**self.ids)

    def signed(self, body: dict[str, str], endpoint: str) -> dict[str, str]:
        """The one part of an OAuth example no document can hold: a fresh client assertion
        for `endpoint` (its audience), and for introspection a real access token of the
        asking client's."""
        sent = dict(body)
        if "client_assertion" in sent:
            audience = f"{ISSUER}{endpoint}"
            sent["client_assertion"] = assertion(
                self.oauth_source, self.oauth_key, audience=audience
            )
        if sent.get("token_type_hint") == "access_token":
            sent["token"] = self.registrar.minter.headers(
                PrincipalType.SOURCE,
                subject=self.oauth_source,
                client_id=self.oauth_source,
                scopes=("ingest:transit",),
            )["Authorization"].removeprefix("Bearer ")
        return sent


async def _send(
    client: httpx.AsyncClient, world: World, operation_id: str, method: str, path: str
) -> list[tuple[str, httpx.Response]]:
    _, _, operation = _operations()[operation_id]
    headers = world.headers(operation_id, operation)
    params = {
        p["name"]: next(iter(p["examples"].values()))["value"]
        for p in operation.get("parameters", [])
        if p["in"] == "query" and p.get("examples")
    }
    url = world.path(path)
    bodies = operation.get("requestBody", {}).get("content", {})
    if not bodies:
        return [("(no body)", await client.request(method, url, params=params, headers=headers))]
    sent: list[tuple[str, httpx.Response]] = []
    for media_type, content in bodies.items():
        for name, example in content["examples"].items():
            if media_type == FORM:
                form = world.signed(example["value"], path)
                response = await client.request(method, url, data=form, headers=headers)
            else:
                response = await client.request(
                    method, url, json=example["value"], params=params, headers=headers
                )
            sent.append((name, response))
    return sent


def _accepted(operation_id: str, name: str, response: httpx.Response) -> None:
    where = (operation_id, name, response.status_code, response.text[:400])
    assert 200 <= response.status_code < 300, where
    if response.headers.get("content-type", "").startswith("application/json") and response.content:
        body = response.json()
        if isinstance(body, dict) and "refused" in body:
            # A push is answered item by item: every example item is one the rules accept.
            assert body["refused"] == 0, where


async def test_every_request_example_in_the_document_is_accepted_as_it_is(
    client: httpx.AsyncClient, app: Litestar, db_session: AsyncSession
) -> None:
    world = World(app, db_session)
    await world.build()
    operations = _operations()
    sent: set[str] = set()
    for operation_id in _ordered(list(operations)):
        method, path, operation = operations[operation_id]
        if operation_id == "DownloadExport":
            continue  # a ZIP built by the worker in the background: tests/bank/vault/test_exports
        if operation_id == "GetProblemType":
            world.ids["code"] = next(iter(operation["parameters"][0]["examples"].values()))["value"]
        for name, response in await _send(client, world, operation_id, method, path):
            _accepted(operation_id, name, response)
            sent.add(operation_id)
            _remember(world, operation_id, response)
    expected = set(operations) - {"DownloadExport"}
    assert sent == expected, expected - sent


def _remember(world: World, operation_id: str, response: httpx.Response) -> None:
    """Ids the later operations' paths name."""
    if operation_id == "RegisterClient":
        world.ids["client_id"] = response.json()["client_id"]
    elif operation_id == "LinkCardOrMembership":
        world.ids["link_id"] = response.json()["id"]
    elif operation_id == "RequestExport":
        world.ids["export_id"] = response.json()["id"]
