"""The first signing key on a new database: created and committed on its own, whatever the
request that needed it does, and one key even when two processes need it at once."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.app import create_app
from bank.auth.keys import SigningKeys
from bank.auth.models import SigningKey
from bank.crypto.keyring import LocalKeyring
from bank.db import Database, make_session_factory
from bank.settings import Settings
from tests.bank.auth.conftest import partner_data
from tests.bank.auth.factories import add_client, assertion, new_key, token_form
from tests.bank.identity.flows import committed
from tests.conftest import serve

pytestmark = pytest.mark.committing


async def _key_count(engine: AsyncEngine) -> int:
    async with AsyncSession(engine) as session:
        return int(await session.scalar(select(func.count()).select_from(SigningKey)) or 0)


async def test_a_refused_first_token_request_leaves_the_next_token_verifiable(
    settings: Settings, fresh_database: AsyncEngine
) -> None:
    client_id, key = await committed(fresh_database, add_client)
    assert await _key_count(fresh_database) == 0
    app = create_app(settings, database=Database(sessions=make_session_factory(fresh_database)))
    app.register(partner_data)
    async with serve(app) as api:
        # The very first request on the empty database fails: signed with a key not registered.
        refused = await api.post("/oauth/token", data=token_form(assertion(client_id, new_key())))
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"] == "invalid_client"

        issued = await api.post("/oauth/token", data=token_form(assertion(client_id, key)))
        assert issued.status_code == 200, issued.text
        access_token = issued.json()["access_token"]

        jwks = (await api.get("/oauth/jwks")).json()
        verified = jwt.decode(access_token, KeySet.import_key_set(jwks), algorithms=["ES256"])
        assert verified.claims["client_id"] == client_id
        called = await api.get(
            "/v1/test/partner-data", headers={"Authorization": f"Bearer {access_token}"}
        )
        assert called.status_code == 200, called.text
    assert await _key_count(fresh_database) == 1


async def test_two_processes_racing_on_an_empty_database_sign_with_one_key(
    settings: Settings, fresh_database: AsyncEngine
) -> None:
    keyring = LocalKeyring.from_settings(settings)
    # Separate SigningKeys, each with its own connections: replicas starting together.
    replicas = [SigningKeys(keyring, make_session_factory(fresh_database)) for _ in range(4)]
    kids = {key.kid for key in await asyncio.gather(*(r.active() for r in replicas))}
    assert len(kids) == 1
    assert await _key_count(fresh_database) == 1


async def test_a_burst_of_requests_loads_the_key_over_one_connection(
    settings: Settings, fresh_database: AsyncEngine
) -> None:
    sessions = make_session_factory(fresh_database)
    opened = 0

    def counting() -> AsyncSession:
        nonlocal opened
        opened += 1
        return sessions()

    keys = SigningKeys(LocalKeyring.from_settings(settings), cast("Any", counting))
    first = await asyncio.gather(*(keys.active() for _ in range(20)))
    assert len({key.kid for key in first}) == 1
    assert opened == 1

    # Past the cache's life one request reloads; the rest sign with the key they had meanwhile.
    keys._active_loaded_at -= 3600
    again = await asyncio.gather(*(keys.active() for _ in range(20)))
    assert {key.kid for key in again} == {first[0].kid}
    assert opened == 2


async def test_rotation_is_committed_on_its_own_and_signs_at_once(
    settings: Settings, fresh_database: AsyncEngine
) -> None:
    keys = SigningKeys(LocalKeyring.from_settings(settings), make_session_factory(fresh_database))
    old = await keys.active()
    new_kid = await keys.rotate()
    assert (await keys.active()).kid == new_kid != old.kid

    # A second process sees the same committed state.
    other = SigningKeys(LocalKeyring.from_settings(settings), make_session_factory(fresh_database))
    assert (await other.active()).kid == new_kid
    async with make_session_factory(fresh_database)() as session:
        published = {jwk["kid"] for jwk in await other.published(session)}
    assert published == {old.kid, new_kid}
