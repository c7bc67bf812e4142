"""One request = one transaction: committed on success, never half-written, never a false 2xx."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from litestar import Litestar, get, post
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from bank.app import create_app
from bank.auth.models import UsedAssertion
from bank.http.transaction import DbSession
from bank.settings import Settings
from tests.bank.probe_routes import PROBE_TABLE_DDL, ProbeController
from tests.bank.test_problems import assert_problem
from tests.conftest import serve

Client = httpx.AsyncClient

# Every connection the app opened to this database (its engine names itself "bank").
TERMINATE_THE_APPS_CONNECTIONS = """
    SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'bank' AND pid <> pg_backend_pid()
"""


async def _notes(connection: AsyncConnection) -> list[str]:
    return list((await connection.execute(text("SELECT note FROM probe_notes"))).scalars())


async def test_success_is_committed(probe_client: Client, connection: AsyncConnection) -> None:
    response = await probe_client.post("/v1/test/notes", json={"note": "kept"})
    assert response.status_code == 201
    assert await _notes(connection) == ["kept"]


async def test_failing_request_leaves_nothing_written(
    probe_client: Client, connection: AsyncConnection
) -> None:
    response = await probe_client.post("/v1/test/notes", json={"note": "lost", "then": "raise"})
    assert_problem(response, 500, "internal-error")
    assert await _notes(connection) == []


async def test_error_response_returned_without_raising_rolls_back(
    probe_client: Client, connection: AsyncConnection
) -> None:
    response = await probe_client.post("/v1/test/notes", json={"note": "x", "then": "return-409"})
    assert response.status_code == 409
    assert await _notes(connection) == []


async def test_rejected_input_writes_nothing(
    probe_client: Client, connection: AsyncConnection
) -> None:
    response = await probe_client.post("/v1/test/notes", json={"note": 5})
    assert_problem(response, 422, "validation-failed")
    assert await _notes(connection) == []


@pytest.mark.committing
async def test_failed_commit_never_returns_2xx(
    committing_probe_client: Client, engine: AsyncEngine
) -> None:
    # The handler succeeds, but the deferred unique constraint fails at COMMIT.
    response = await committing_probe_client.post(
        "/v1/test/notes", json={"note": "dup", "then": "insert-twice"}
    )
    assert_problem(response, 500, "internal-error")
    async with engine.connect() as connection:
        assert await _notes(connection) == []


@pytest.mark.committing
async def test_commit_on_a_dead_connection_is_503_with_retry_after(
    committing_probe_client: Client, committing_app: Litestar, engine: AsyncEngine
) -> None:
    # Kill the request's backend between the handler's write and the commit.
    from tests.bank.probe_routes import ProbeController

    async def kill_own_backend(session: AsyncSession) -> None:
        pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with engine.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await admin.commit()

    ProbeController.after_write = kill_own_backend  # type: ignore[attr-defined]
    try:
        response = await committing_probe_client.post(
            "/v1/test/notes", json={"note": "gone", "then": "ok"}
        )
    finally:
        del ProbeController.after_write  # type: ignore[attr-defined]
    body = assert_problem(response, 503, "service-unavailable")
    assert response.headers["retry-after"].isdigit()
    assert "Nothing was saved" in body["detail"]
    async with engine.connect() as connection:
        assert await _notes(connection) == []


@pytest.mark.committing
async def test_concurrent_requests_each_commit_their_own_work(
    committing_probe_client: Client, engine: AsyncEngine
) -> None:
    responses = await asyncio.gather(
        *(committing_probe_client.post("/v1/test/notes", json={"note": f"n{i}"}) for i in range(8))
    )
    assert [r.status_code for r in responses] == [201] * 8
    async with engine.connect() as connection:
        assert sorted(await _notes(connection)) == sorted(f"n{i}" for i in range(8))


@pytest.mark.committing
async def test_after_the_server_drops_every_pooled_connection_only_one_request_fails(
    settings: Settings, engine: AsyncEngine
) -> None:
    # The app's own engine, configured as in production (no pre-ping): a dropped connection
    # fails the one request on it, and the disconnect discards the pool's other stale ones.
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE IF EXISTS probe_notes"))
        await connection.execute(text(PROBE_TABLE_DDL.format(temporary="")))
    app = create_app(settings)
    app.register(ProbeController)
    try:
        async with serve(app) as client:
            warm = await asyncio.gather(
                *(client.post("/v1/test/notes", json={"note": f"warm{i}"}) for i in range(4))
            )
            assert [r.status_code for r in warm] == [201] * 4
            async with engine.connect() as admin:
                dropped = await admin.scalar(text(TERMINATE_THE_APPS_CONNECTIONS))
                await admin.commit()
            assert dropped >= 2  # several pooled connections, all of them gone
            first = await client.post("/v1/test/notes", json={"note": "first"})
            if first.status_code != 201:
                assert_problem(first, 503, "service-unavailable")
                assert first.headers["retry-after"].isdigit()
            later = [
                (await client.post("/v1/test/notes", json={"note": f"later{i}"})).status_code
                for i in range(4)
            ]
            assert later == [201] * 4
        async with engine.connect() as connection:
            notes = set(await _notes(connection))
        assert {f"later{i}" for i in range(4)} <= notes
        assert ("first" in notes) == (first.status_code == 201)
    finally:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE probe_notes"))


@post("/v1/test/added-not-flushed", status_code=201)
async def add_without_flush(db_session: DbSession) -> None:
    # Only `add`: the middleware's commit is what flushes and writes it.
    db_session.add(UsedAssertion(client_id="probe", jti="added-not-flushed", expires_at=_LATER))


@get("/v1/test/session-unused")
async def session_unused(db_session: DbSession) -> dict[str, bool]:
    return {"in_transaction": db_session.in_transaction()}


_LATER = datetime(2099, 1, 1, tzinfo=UTC)


async def test_an_object_added_but_never_flushed_is_committed(
    app: Litestar, connection: AsyncConnection
) -> None:
    """A request whose session never ran a statement is not settled at all; one that only
    `add`ed an object still commits it (the fast path must not drop it)."""
    app.register(add_without_flush)
    app.register(session_unused)
    async with serve(app) as client:
        assert (await client.get("/v1/test/session-unused")).json() == {"in_transaction": False}
        assert (await client.post("/v1/test/added-not-flushed")).status_code == 201
    stored = await connection.scalar(
        select(UsedAssertion.jti).where(UsedAssertion.client_id == "probe")
    )
    assert stored == "added-not-flushed"
