"""Liveness and readiness: ready means the database answers, the schema is at head, and the
process's own job worker (if it runs one) is running."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bank.app import create_app
from bank.db import Database, make_session_factory
from bank.db.migrate import heads
from bank.settings import Settings, as_asyncpg
from tests.bank.tcp_proxy import TcpProxy
from tests.conftest import serve


async def test_live(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_at_head(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "migrations": "head",
        "worker": "external",
        "erasures": "reapplied",
        "keystore": "ok",
    }


async def test_not_ready_when_migrations_are_behind(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    assert len(heads()) == 1
    await connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["migrations"] == "behind"


async def test_not_ready_when_database_is_unreachable(settings: Settings, tmp_path: Path) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    # Nothing listens on port 1; the probe must answer 503 quickly instead of hanging. A key
    # directory of its own: an empty erasure journal needs no database to be reapplied.
    unreachable = create_async_engine(as_asyncpg("postgresql://bank@127.0.0.1:1/bank"))
    settings = settings.model_copy(update={"data_dir": tmp_path})
    app = create_app(settings, database=Database(sessions=make_session_factory(unreachable)))
    try:
        async with serve(app) as client:
            response = await client.get("/health/ready")
            live = await client.get("/health/live")
    finally:
        await unreachable.dispose()
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "unreachable",
        "migrations": "unknown",
        "worker": "external",
        "erasures": "reapplied",
        "keystore": "unknown",
    }
    assert live.status_code == 200


@pytest.mark.committing
async def test_not_ready_while_the_embedded_worker_lost_its_database_then_ready_again(
    settings: Settings, engine: AsyncEngine
) -> None:
    # The worker reaches PostgreSQL through a proxy the test cuts; the web app's own database
    # stays reachable, so only the worker can explain a 503.
    upstream = make_url(settings.async_database_url())
    proxy = TcpProxy(upstream.host or "127.0.0.1", upstream.port or 5432)
    port = await proxy.start()
    through_proxy = upstream.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    worker_settings = settings.model_copy(
        update={"embedded_worker": True, "database_url": SecretStr(through_proxy)}
    )
    app = create_app(worker_settings, database=Database(sessions=make_session_factory(engine)))
    try:
        async with serve(app) as client:
            assert (await _readiness_becomes(client, 200, within_s=10))["worker"] == "up"
            assert _worker_up_metric(await client.get("/metrics")) == 1

            proxy.cut()
            down = await _readiness_becomes(client, 503, within_s=15)
            assert down == {
                "status": "unavailable",
                "database": "ok",
                "migrations": "head",
                "worker": "down",
                "erasures": "reapplied",
                "keystore": "ok",
            }
            assert _worker_up_metric(await client.get("/metrics")) == 0

            proxy.restore()
            assert (await _readiness_becomes(client, 200, within_s=20))["worker"] == "up"
            assert _worker_up_metric(await client.get("/metrics")) == 1
    finally:
        await proxy.close()


async def _readiness_becomes(
    client: httpx.AsyncClient, status: int, *, within_s: float
) -> dict[str, str]:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        response = await client.get("/health/ready")
        if response.status_code == status:
            body: dict[str, str] = response.json()
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"/health/ready stayed {response.status_code}: {response.text}")
        await asyncio.sleep(0.1)


def _worker_up_metric(response: httpx.Response) -> float:
    for line in response.text.splitlines():
        if line.startswith("bank_job_worker_up "):
            return float(line.split()[1])
    raise AssertionError("bank_job_worker_up is missing from /metrics")
