"""The operators' client registry API: who may call it, what it accepts, what it refuses."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.clients import ClientRegistry
from bank.auth.models import ClientStatus, OAuthClient
from bank.auth.principals import PrincipalType
from tests.bank.admin.conftest import OPERATOR_SUBJECT, Tokens
from tests.bank.auth.factories import (
    CORPORATE_NUMBER,
    add_app_client,
    add_client,
    assertion,
    new_key,
    token_form,
)

CLIENTS = "/v1/admin/clients"
VIEW_FIELDS = {
    "client_id",
    "kind",
    "name",
    "corporate_number",
    "contact_email",
    "certifications",
    "redirect_uris",
    "jwks",
    "jwks_uri",
    "scopes",
    "status",
    "created_at",
    "updated_at",
}


def _partner_body(**changes: Any) -> dict[str, Any]:
    key = changes.pop("key", None) or new_key()
    body: dict[str, Any] = {
        "kind": "partner",
        "name": "Sapporo Wellness KK",
        "scopes": ["partner:data"],
        "corporate_number": CORPORATE_NUMBER,
        "contact_email": "privacy-desk@wellness.example.jp",
        "certifications": [{"name": "Pマーク", "number": "17000123", "expires_on": "2099-03-31"}],
        "jwks": {"keys": [dict(key.as_dict(private=False))]},
    }
    body.update(changes)
    return body


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"/problems/{code}"
    return body


async def _register(api: httpx.AsyncClient, tokens: Tokens, body: dict[str, Any]) -> str:
    response = await api.post(CLIENTS, json=body, headers=tokens.operator())
    assert response.status_code == 201, response.text
    client_id: str = response.json()["client_id"]
    return client_id


async def _set_status(
    api: httpx.AsyncClient, tokens: Tokens, client_id: str, status: str
) -> httpx.Response:
    return await api.post(
        f"{CLIENTS}/{client_id}/status",
        json={"status": status, "reason": "Vetting done (ticket OPS-1234)"},
        headers=tokens.operator(),
    )


async def test_operator_registers_a_partner_that_starts_pending(
    api: httpx.AsyncClient, tokens: Tokens
) -> None:
    key = new_key()
    response = await api.post(CLIENTS, json=_partner_body(key=key), headers=tokens.operator())
    assert response.status_code == 201, response.text
    client = response.json()
    assert set(client) == VIEW_FIELDS
    assert client["client_id"].startswith("partner-")
    assert client["kind"] == "partner"
    assert client["status"] == "pending"
    assert client["corporate_number"] == CORPORATE_NUMBER
    assert client["contact_email"] == "privacy-desk@wellness.example.jp"
    assert client["certifications"] == [
        {"name": "Pマーク", "number": "17000123", "expires_on": "2099-03-31"}
    ]
    assert client["jwks"] == {"keys": [dict(key.as_dict(private=False))]}
    assert "d" not in client["jwks"]["keys"][0]
    assert client["jwks_uri"] is None
    assert client["scopes"] == ["partner:data"]
    assert client["redirect_uris"] == []
    datetime.fromisoformat(client["created_at"])

    fetched = await api.get(f"{CLIENTS}/{client['client_id']}", headers=tokens.operator())
    assert fetched.status_code == 200
    assert fetched.json() == client


@pytest.mark.parametrize(
    ("kind", "scopes", "redirect_uri"),
    [
        ("resident_app", ["records:read", "account"], "jp.sapporo.bank.app:/oauth/callback"),
        ("operator_console", ["admin:clients"], "https://console.bank.example.jp/cb"),
        ("resident_app", ["records:read"], "http://127.0.0.1:8765/callback"),
    ],
)
async def test_operator_registers_public_clients_without_keys(
    api: httpx.AsyncClient, tokens: Tokens, kind: str, scopes: list[str], redirect_uri: str
) -> None:
    body = {"kind": kind, "name": "Sapporo Health app", "scopes": scopes}
    response = await api.post(
        CLIENTS, json={**body, "redirect_uris": [redirect_uri]}, headers=tokens.operator()
    )
    assert response.status_code == 201, response.text
    client = response.json()
    assert client["kind"] == kind
    assert client["status"] == "pending"
    assert client["jwks"] is None
    assert client["corporate_number"] is None
    assert client["redirect_uris"] == [redirect_uri]
    assert client["scopes"] == sorted(scopes)


async def test_list_is_newest_first_and_filters_by_status_and_kind(
    api: httpx.AsyncClient, tokens: Tokens, db_session: AsyncSession
) -> None:
    oldest = await _register(api, tokens, _partner_body())
    middle = await _register(
        api,
        tokens,
        _partner_body(kind="source", scopes=["ingest:transit"], name="Sapporo Transit"),
    )
    newest = await _register(api, tokens, _partner_body(name="Hokkaido Insurance KK"))
    assert (await _set_status(api, tokens, oldest, "active")).status_code == 200
    # One test is one transaction, where now() never moves: date the rows apart by hand.
    now = datetime.now(UTC)
    for age, client_id in ((3, oldest), (2, middle), (1, newest)):
        await db_session.execute(
            update(OAuthClient)
            .where(OAuthClient.client_id == client_id)
            .values(created_at=now - timedelta(hours=age))
        )
    await db_session.commit()
    ours = {oldest, middle, newest}

    async def listed(query: str = "") -> list[str]:
        response = await api.get(f"{CLIENTS}{query}", headers=tokens.operator())
        assert response.status_code == 200, response.text
        return [c["client_id"] for c in response.json() if c["client_id"] in ours]

    assert await listed() == [newest, middle, oldest]
    assert await listed("?status=pending") == [newest, middle]
    assert await listed("?status=active") == [oldest]
    assert await listed("?kind=source") == [middle]
    assert await listed("?kind=partner&status=pending") == [newest]
    assert await listed("?status=suspended") == []

    bad = await api.get(f"{CLIENTS}?status=deleted", headers=tokens.operator())
    errors = _problem(bad, 422, "validation-failed")["errors"]
    assert [e["path"] for e in errors] == ["status"]
    assert errors[0]["location"] == "query"


async def test_activate_then_suspend_revokes_the_partners_tokens_at_once(
    api: httpx.AsyncClient, tokens: Tokens
) -> None:
    key = new_key()
    client_id = await _register(api, tokens, _partner_body(key=key))
    activated = await _set_status(api, tokens, client_id, "active")
    assert activated.status_code == 200, activated.text
    assert activated.json()["status"] == "active"
    assert activated.json()["client_id"] == client_id

    issued = await api.post("/oauth/token", data=token_form(assertion(client_id, key)))
    assert issued.status_code == 200, issued.text
    from_token_endpoint = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    minted = tokens.bearer(PrincipalType.PARTNER, client_id, ["partner:data"], client_id)
    for headers in (from_token_endpoint, minted):
        admitted = await api.get("/v1/test/partner-data", headers=headers)
        assert admitted.status_code == 200
        assert admitted.json() == {"client_id": client_id}

    suspended = await _set_status(api, tokens, client_id, "suspended")
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "suspended"
    for headers in (from_token_endpoint, minted):
        refused = await api.get("/v1/test/partner-data", headers=headers)
        _problem(refused, 401, "invalid-token")
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    again = await api.post("/oauth/token", data=token_form(assertion(client_id, key)))
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_client"

    fetched = await api.get(f"{CLIENTS}/{client_id}", headers=tokens.operator())
    assert fetched.json()["status"] == "suspended"


async def test_status_change_is_logged_with_the_operator_and_ids_only(
    api: httpx.AsyncClient, tokens: Tokens, capsys: pytest.CaptureFixture[str]
) -> None:
    client_id = await _register(api, tokens, _partner_body())
    capsys.readouterr()
    assert (await _set_status(api, tokens, client_id, "active")).status_code == 200
    output = capsys.readouterr().out
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    changes = [e for e in events if e["event"] == "admin.client_status_changed"]
    assert len(changes) == 1
    assert changes[0]["client_id"] == client_id
    assert changes[0]["operator"] == OPERATOR_SUBJECT
    assert (changes[0]["previous"], changes[0]["status"]) == ("pending", "active")
    assert "OPS-1234" not in output  # the free-text reason stays out of the logs
    assert "privacy-desk@" not in output


async def test_resident_and_partner_tokens_are_refused_on_admin_routes(
    api: httpx.AsyncClient, tokens: Tokens, db_session: AsyncSession
) -> None:
    app_id = await add_app_client(db_session)
    partner_id, _ = await add_client(db_session)
    await db_session.commit()
    resident = tokens.bearer(
        PrincipalType.RESIDENT, app_id, ["records:read", "admin:clients"], OPERATOR_SUBJECT
    )
    partner = tokens.bearer(PrincipalType.PARTNER, partner_id, ["partner:data"], partner_id)
    for headers in (resident, partner):
        for response in (
            await api.get(CLIENTS, headers=headers),
            await api.post(CLIENTS, json=_partner_body(), headers=headers),
            await api.get(f"{CLIENTS}/{partner_id}", headers=headers),
            await api.post(
                f"{CLIENTS}/{partner_id}/status",
                json={"status": "suspended", "reason": "x"},
                headers=headers,
            ),
        ):
            body = _problem(response, 401, "invalid-token")
            assert "urn:city-bank:api:admin" in body["detail"]
            assert 'error="invalid_token"' in response.headers["www-authenticate"]
    still = await api.get(f"{CLIENTS}/{partner_id}", headers=tokens.operator())
    assert still.json()["status"] == "active"


async def test_missing_token_is_401(api: httpx.AsyncClient) -> None:
    response = await api.get(CLIENTS)
    _problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == 'Bearer realm="city-bank"'


async def test_operator_without_the_scope_gets_403(api: httpx.AsyncClient, tokens: Tokens) -> None:
    headers = tokens.operator(scopes=("admin:keys", "ethics:review"))
    for response in (
        await api.get(CLIENTS, headers=headers),
        await api.post(CLIENTS, json=_partner_body(), headers=headers),
    ):
        body = _problem(response, 403, "insufficient-scope")
        assert "admin:clients" in body["detail"]
        assert 'scope="admin:clients"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"corporate_number": "1" + CORPORATE_NUMBER[1:]}, "法人番号"),
        (
            {"jwks": {"keys": [dict(new_key().as_dict(private=True))]}},
            "jwks must hold public keys only.",
        ),
        ({"scopes": ["partner:data", "admin:clients"]}, "partner client: admin:clients"),
        ({"redirect_uris": ["http://partner.example.jp/callback"]}, "redirect URIs must be https"),
        ({"jwks_uri": "https://partner.example.jp/jwks.json"}, "exactly one of jwks or jwks_uri"),
        ({"corporate_number": None}, "need a corporate_number"),
    ],
)
async def test_invalid_registration_is_422_naming_the_problem(
    api: httpx.AsyncClient, tokens: Tokens, changes: dict[str, Any], detail: str
) -> None:
    name = f"Refused KK {secrets.token_hex(4)}"  # unique: committed rows of other tests differ
    body = _partner_body(**({"name": name} | changes))
    response = await api.post(CLIENTS, json=body, headers=tokens.operator())
    problem = _problem(response, 422, "invalid-client-registration")
    assert detail in problem["detail"]
    listed = await api.get(CLIENTS, headers=tokens.operator())
    assert body["name"] not in [c["name"] for c in listed.json()]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"kind": "partner", "scopes": ["partner:data"]}, "$.name"),
        ({"kind": "bank", "name": "X", "scopes": ["partner:data"]}, "$.kind"),
        ({"kind": "partner", "name": "X", "scopes": []}, "$.scopes"),
        (_partner_body(client_secret="s3cret"), "$"),
        (
            _partner_body(
                certifications=[{"name": "ISMS", "number": "1", "expires_on": "someday"}]
            ),
            "$.certifications[0].expires_on",
        ),
    ],
)
async def test_malformed_registration_body_is_422_with_the_field_path(
    api: httpx.AsyncClient, tokens: Tokens, body: dict[str, Any], path: str
) -> None:
    response = await api.post(CLIENTS, json=body, headers=tokens.operator())
    errors = _problem(response, 422, "validation-failed")["errors"]
    assert [(e["location"], e["path"]) for e in errors] == [("body", path)]
    assert "s3cret" not in response.text


async def test_illegal_transitions_are_409(api: httpx.AsyncClient, tokens: Tokens) -> None:
    client_id = await _register(api, tokens, _partner_body())
    body = _problem(
        await _set_status(api, tokens, client_id, "pending"), 409, "client-status-conflict"
    )
    assert body["detail"] == "A pending client cannot become pending."

    assert (await _set_status(api, tokens, client_id, "suspended")).status_code == 200
    body = _problem(
        await _set_status(api, tokens, client_id, "pending"), 409, "client-status-conflict"
    )
    assert body["detail"] == "A suspended client cannot become pending."
    fetched = await api.get(f"{CLIENTS}/{client_id}", headers=tokens.operator())
    assert fetched.json()["status"] == "suspended"


@pytest.mark.parametrize(
    ("certifications", "detail"),
    [
        ([], "A partner needs a current certification"),
        (
            [{"name": "ISMS (ISO/IEC 27001)", "number": "IS 1", "expires_on": "2020-01-31"}],
            "Expired certification(s): ISMS (ISO/IEC 27001).",
        ),
    ],
)
async def test_unvetted_partner_cannot_be_activated(
    api: httpx.AsyncClient, tokens: Tokens, certifications: list[dict[str, str]], detail: str
) -> None:
    client_id = await _register(api, tokens, _partner_body(certifications=certifications))
    response = await _set_status(api, tokens, client_id, "active")
    body = _problem(response, 409, "client-status-conflict")
    assert body["detail"].startswith(detail)
    fetched = await api.get(f"{CLIENTS}/{client_id}", headers=tokens.operator())
    assert fetched.json()["status"] == "pending"


@pytest.mark.parametrize(
    "change",
    [
        {"status": "deleted", "reason": "x"},
        {"status": "active"},
        {"status": "active", "reason": ""},
    ],
)
async def test_malformed_status_change_is_422(
    api: httpx.AsyncClient, tokens: Tokens, change: dict[str, str]
) -> None:
    client_id = await _register(api, tokens, _partner_body())
    response = await api.post(
        f"{CLIENTS}/{client_id}/status", json=change, headers=tokens.operator()
    )
    _problem(response, 422, "validation-failed")


async def test_unknown_client_is_404(api: httpx.AsyncClient, tokens: Tokens) -> None:
    missing = "partner-does-not-exist"
    body = _problem(
        await api.get(f"{CLIENTS}/{missing}", headers=tokens.operator()), 404, "client-not-found"
    )
    assert missing in body["detail"]
    _problem(await _set_status(api, tokens, missing, "active"), 404, "client-not-found")


async def test_an_operator_cannot_suspend_the_console_the_request_comes_through(
    api: httpx.AsyncClient, tokens: Tokens, db_session: AsyncSession
) -> None:
    response = await _set_status(api, tokens, tokens.console_id, "suspended")
    body = _problem(response, 409, "client-is-callers-console")
    assert "bank clients suspend" in body["detail"]
    # Nothing changed: the console, and this operator's token, still work.
    fetched = await api.get(f"{CLIENTS}/{tokens.console_id}", headers=tokens.operator())
    assert fetched.status_code == 200
    assert fetched.json()["status"] == "active"
    # Another console client may be suspended through this one.
    other = await _register(
        api,
        tokens,
        {
            "kind": "operator_console",
            "name": "Second console",
            "scopes": ["admin:clients"],
            "redirect_uris": ["https://console2.bank.example.jp/oauth/callback"],
        },
    )
    assert (await _set_status(api, tokens, other, "active")).status_code == 200
    assert (await _set_status(api, tokens, other, "suspended")).json()["status"] == "suspended"


async def test_the_cli_may_still_suspend_the_console_as_a_break_glass(
    db_session: AsyncSession, tokens: Tokens
) -> None:
    # `bank clients suspend` calls the registry without a caller's client.
    client = await ClientRegistry(db_session).set_status(tokens.console_id, ClientStatus.SUSPENDED)
    assert client.status == "suspended"
