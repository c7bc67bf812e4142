"""A parameter sent twice at the token, revocation or introspection endpoint is refused with
invalid_request (RFC 6749 §3.1, §3.2), whichever parameter it is and whatever its values."""

from __future__ import annotations

import httpx
import pytest
from joserfc.jwk import ECKey, OKPKey, RSAKey
from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.controllers import INTROSPECT_PATH, REVOKE_PATH, TOKEN_PATH
from tests.bank.auth.factories import ISSUER, add_client, assertion, token_form

_ENDPOINTS = {
    TOKEN_PATH: "grant_type",
    REVOKE_PATH: "token",
    INTROSPECT_PATH: "token",
}


def _form(client_id: str, key: ECKey | RSAKey | OKPKey, path: str) -> dict[str, list[str]]:
    """A request the endpoint would accept, each parameter once."""
    signed = assertion(client_id, key, audience=f"{ISSUER}{path}")
    form = token_form(signed)
    if path != TOKEN_PATH:
        del form["grant_type"]
        form["token"] = "an-access-token"
    return {name: [value] for name, value in form.items()}


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", sorted(_ENDPOINTS))
async def test_the_endpoints_main_parameter_sent_twice_is_refused(
    api: httpx.AsyncClient, db_session: AsyncSession, path: str
) -> None:
    client_id, key = await add_client(db_session)
    form = _form(client_id, key, path)
    name = _ENDPOINTS[path]
    form[name] *= 2
    _refused(await api.post(path, data=form))


@pytest.mark.parametrize("path", sorted(_ENDPOINTS))
@pytest.mark.parametrize("name", ["client_assertion", "client_assertion_type", "scope", "x"])
async def test_any_parameter_sent_twice_is_refused(
    api: httpx.AsyncClient, db_session: AsyncSession, path: str, name: str
) -> None:
    client_id, key = await add_client(db_session)
    form = _form(client_id, key, path)
    form[name] = [*form.get(name, ["one"]), "two"]
    _refused(await api.post(path, data=form))


async def test_grant_type_twice_with_different_values_issues_nothing(
    api: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    client_id, key = await add_client(db_session)
    form = _form(client_id, key, TOKEN_PATH)
    form["grant_type"].append("authorization_code")
    response = await api.post(TOKEN_PATH, data=form)
    _refused(response)
    assert "access_token" not in response.json()
