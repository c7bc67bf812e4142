"""One request = one transaction: committed on success, never half-written, never a false 2xx."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from tests.bank.test_problems import assert_problem

Client = httpx.AsyncClient


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
