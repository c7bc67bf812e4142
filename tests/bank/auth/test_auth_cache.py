"""Token standing and client registrations cached per process: never staler than the last commit
that changed them, and not trusted at all while the change notifications cannot be heard."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.app import create_app
from bank.auth.cache import AuthCache
from bank.auth.clients import ClientRegistry
from bank.auth.models import ClientStatus
from bank.settings import Settings, load_settings
from tests.bank.auth.conftest import partner_data
from tests.bank.auth.factories import add_client, assertion, token_form
from tests.bank.identity.flows import committed
from tests.conftest import serve

PROTECTED = "/v1/test/partner-data"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# --- the cache's own rule ------------------------------------------------------------------------


def _loader(db: dict[int, int], key: int, calls: list[int]) -> Callable[[], Awaitable[int]]:
    async def load() -> int:
        calls.append(key)
        return db[key]

    return load


async def test_a_dark_cache_reads_every_time() -> None:
    cache, db, calls = AuthCache(), {1: 7}, list[int]()
    for _ in range(3):
        assert await cache.get(1, _loader(db, 1, calls)) == 7
    assert calls == [1, 1, 1]


async def test_a_live_cache_reads_once_until_a_change_is_announced() -> None:
    cache, db, calls = AuthCache(), {1: 7}, list[int]()
    cache.go_live()
    assert await cache.get(1, _loader(db, 1, calls)) == 7
    assert await cache.get(1, _loader(db, 1, calls)) == 7
    assert calls == [1]
    db[1] = 8
    cache.invalidate()
    assert await cache.get(1, _loader(db, 1, calls)) == 8
    cache.go_dark()
    db[1] = 9  # unannounced: only a dark cache may be relied on to see it
    assert await cache.get(1, _loader(db, 1, calls)) == 9


async def test_a_value_read_before_a_change_is_not_kept_after_it() -> None:
    cache, db = AuthCache(), {1: 1}
    cache.go_live()
    gate = asyncio.Event()

    async def slow_load() -> int:
        value = db[1]  # the database answers here, before the change commits...
        await gate.wait()
        return value  # ...and the answer arrives after the change was announced

    reading = asyncio.create_task(cache.get(1, slow_load))
    await asyncio.sleep(0)
    db[1] = 2
    cache.invalidate()
    gate.set()
    assert await reading == 1  # what the read saw: fine for the request that made it
    assert await cache.get(1, _loader(db, 1, [])) == 2  # but it was not kept


_OPS = st.lists(
    st.tuples(st.sampled_from(["start", "finish", "change", "read"]), st.integers(0, 2)),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(ops=_OPS)
def test_no_read_after_an_announced_change_returns_the_old_value(
    ops: list[tuple[str, int]],
) -> None:
    """Reads that straddle changes may return what they saw, but once a change is announced,
    every read that starts afterwards returns the new value: nothing stale sticks."""

    async def scenario() -> None:
        cache, db = AuthCache(), dict.fromkeys(range(3), 0)
        cache.go_live()
        pending: list[tuple[asyncio.Task[int], asyncio.Event]] = []

        def straddling(key: int, gate: asyncio.Event) -> Callable[[], Awaitable[int]]:
            async def load() -> int:
                value = db[key]
                await gate.wait()
                return value

            return load

        for op, key in ops:
            if op == "start":
                gate = asyncio.Event()
                pending.append((asyncio.create_task(cache.get(key, straddling(key, gate))), gate))
                await asyncio.sleep(0)
            elif op == "finish" and pending:
                task, gate = pending.pop(0)
                gate.set()
                await task
            elif op == "change":
                db[key] += 1
                cache.invalidate()  # the trigger's NOTIFY, heard at commit
            elif op == "read":
                assert await cache.get(key, _loader(db, key, [])) == db[key]
        for task, gate in pending:
            gate.set()
            await task
        for key in db:
            assert await cache.get(key, _loader(db, key, [])) == db[key]

    asyncio.run(scenario())


# --- an app that owns its database: the listener, for real ---------------------------------------


@pytest.fixture
def owned_app(settings: Settings, fresh_database: AsyncEngine) -> Litestar:
    """The app as production runs it: its own engine on a committed database, listener on."""
    url = fresh_database.url.render_as_string(hide_password=False)
    own = load_settings(
        database_url=url.replace("+asyncpg", ""),
        environment="test",
        log_format="json",
        data_dir=settings.data_dir,
        master_key=settings.master_key.get_secret_value() if settings.master_key else None,
    )
    app = create_app(own)
    app.register(partner_data)
    return app


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> float:
    """Seconds it took `condition` to hold (polling); fails the test if it never does."""
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < seconds, "the condition never held"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def _count_statements(app: Litestar) -> list[str]:
    seen: list[str] = []

    def before(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(app.state.database.engine.sync_engine, "before_cursor_execute", before)
    return seen


async def _live(app: Litestar) -> bool:
    return bool(app.state.auth_cache.live)


async def _token(api: httpx.AsyncClient, client_id: str, key: Any) -> dict[str, str]:
    issued = await api.post("/oauth/token", data=token_form(assertion(client_id, key)))
    assert issued.status_code == 200, issued.text
    return {"Authorization": f"Bearer {issued.json()['access_token']}"}


async def _revoke(
    api: httpx.AsyncClient, client_id: str, key: Any, auth: dict[str, str]
) -> httpx.Response:
    return await api.post(
        "/oauth/revoke",
        data={
            "token": auth["Authorization"].removeprefix("Bearer "),
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(client_id, key),
        },
    )


def _refused(api: httpx.AsyncClient, auth: dict[str, str]) -> Callable[[], Awaitable[bool]]:
    async def refused() -> bool:
        return (await api.get(PROTECTED, headers=auth)).status_code == 401

    return refused


@dataclass(frozen=True)
class _Partner:
    api: httpx.AsyncClient
    client_id: str
    key: Any
    auth: dict[str, str]  # a token whose standing the app has read once, and may have cached


@contextlib.asynccontextmanager
async def _partner_of(app: Litestar, engine: AsyncEngine) -> AsyncIterator[_Partner]:
    """A committed partner calling `app` (served, listener live) with a token it used once."""
    client_id, key = await committed(engine, add_client)
    async with serve(app) as api:
        await _until(lambda: _live(app))
        auth = await _token(api, client_id, key)
        assert (await api.get(PROTECTED, headers=auth)).status_code == 200
        yield _Partner(api, client_id, key, auth)


@pytest.mark.committing
async def test_a_cached_token_is_refused_once_its_client_is_suspended_elsewhere(
    owned_app: Litestar, fresh_database: AsyncEngine
) -> None:
    async with _partner_of(owned_app, fresh_database) as partner:
        statements = _count_statements(owned_app)
        for _ in range(5):
            assert (await partner.api.get(PROTECTED, headers=partner.auth)).status_code == 200
        assert statements == [], "a cached token's standing is not read again"

        # Another replica (here: another connection) suspends the client and commits.
        async def suspend(session: AsyncSession) -> None:
            await ClientRegistry(session).set_status(partner.client_id, ClientStatus.SUSPENDED)

        await committed(fresh_database, suspend)
        assert await _until(_refused(partner.api, partner.auth), seconds=2.0) < 2.0


@pytest.mark.committing
async def test_a_revoked_token_is_refused_though_its_standing_was_cached(
    owned_app: Litestar, fresh_database: AsyncEngine
) -> None:
    async with _partner_of(owned_app, fresh_database) as partner:
        revoked = await _revoke(partner.api, partner.client_id, partner.key, partner.auth)
        assert revoked.status_code == 200, revoked.text
        await _until(_refused(partner.api, partner.auth), seconds=2.0)


@pytest.mark.committing
async def test_a_lost_listener_stops_the_cache_until_it_listens_again(
    owned_app: Litestar, fresh_database: AsyncEngine
) -> None:
    async with _partner_of(owned_app, fresh_database) as partner:
        async with fresh_database.connect() as connection:
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'bank-auth-cache' AND datname = current_database()"
                )
            )

        async def dark() -> bool:
            return not owned_app.state.auth_cache.live

        await _until(dark)
        # While deaf, every request reads the database: a suspension counts at once.
        statements = _count_statements(owned_app)
        assert (await partner.api.get(PROTECTED, headers=partner.auth)).status_code == 200
        assert statements or owned_app.state.auth_cache.live
        await _until(lambda: _live(owned_app))
        assert (await partner.api.get(PROTECTED, headers=partner.auth)).status_code == 200


async def test_a_revocation_answered_here_is_in_force_for_the_very_next_request(
    api: httpx.AsyncClient, app: Litestar, db_session: AsyncSession
) -> None:
    """RFC 7009: once revocation answers 200 the token is revoked. The NOTIFY may reach this
    process's listener later than the client's next request: the commit itself empties the cache.
    (Live here with no listener at all, so only the commit can do it.)"""
    client_id, key = await add_client(db_session)
    await db_session.commit()
    app.state.auth_cache.go_live()
    auth = await _token(api, client_id, key)
    assert (await api.get(PROTECTED, headers=auth)).status_code == 200
    assert (await api.get(PROTECTED, headers=auth)).status_code == 200  # from the cache now
    revoked = await _revoke(api, client_id, key, auth)
    assert revoked.status_code == 200, revoked.text
    assert (await api.get(PROTECTED, headers=auth)).status_code == 401


async def test_a_suspension_committed_here_empties_the_cache_at_commit(
    api: httpx.AsyncClient, app: Litestar, db_session: AsyncSession
) -> None:
    client_id, key = await add_client(db_session)
    await db_session.commit()
    app.state.auth_cache.go_live()
    auth = await _token(api, client_id, key)
    assert (await api.get(PROTECTED, headers=auth)).status_code == 200
    await ClientRegistry(db_session).set_status(client_id, ClientStatus.SUSPENDED)
    await db_session.commit()
    assert (await api.get(PROTECTED, headers=auth)).status_code == 401
