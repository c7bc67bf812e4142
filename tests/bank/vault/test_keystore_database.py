"""Erasure against backups that hold no keys, and against a key store restored beside them.

Two ways the operator keeps keys out of the records backups (deploy/README.md): the key store in
a database of its own (`BANK_KEYSTORE_DATABASE_URL`), whose cluster is backed up on its own
schedule, and records-only dumps (`pg_dump --exclude-schema=keystore`) of a shared database.
Either way, a records backup taken before an erasure and restored after it brings the erased
resident's account, records and links back beside the *current* key store: the journal's reapply
erases them again before the app is ready, and everyone else's data still opens.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import httpx
import pytest
from litestar import Litestar
from pydantic import SecretStr
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from bank.app import create_app
from bank.auth.principals import PrincipalType
from bank.crypto.keystore import DataKey, KeysLeftBehind
from bank.db.migrate import current_revisions, heads, upgrade, upgrade_keystore
from bank.http.startup_gate import StartupGate
from bank.settings import Settings
from tests.bank.identity.flows import committed
from tests.bank.vault.conftest import Clients, Residents, _minter, _Registrar
from tests.bank.vault.test_erasure_backup import _PG_BIN, _libpq, _run
from tests.bank.vault.test_erasure_restore import _check_served, _fill, _held
from tests.bank.vault.test_sources_api import SUBWAY, card_of
from tests.conftest import serve

pytestmark = pytest.mark.committing
T = TypeVar("T")


@dataclass(frozen=True)
class Scratch:
    url: str  # libpq
    engine: AsyncEngine


@pytest.fixture
async def scratch(database_url: str) -> AsyncIterator[Callable[[], Awaitable[Scratch]]]:
    """`await scratch()`: a new, empty database on the test server, dropped afterwards."""
    admin = create_async_engine(
        make_url(_libpq(database_url, "postgres")).set(drivername="postgresql+asyncpg"),
        isolation_level="AUTOCOMMIT",
    )
    made: list[tuple[str, AsyncEngine]] = []

    async def new() -> Scratch:
        name = f"bank_scratch_{uuid.uuid4().hex[:12]}"
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = _libpq(database_url, name)
        engine = create_async_engine(make_url(url).set(drivername="postgresql+asyncpg"))
        made.append((name, engine))
        return Scratch(url, engine)

    try:
        yield new
    finally:
        for name, engine in made:
            await engine.dispose()
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _keys_of(engine: AsyncEngine, resident_id: uuid.UUID) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            select(func.count()).where(DataKey.resident_id == resident_id)
        )
    return int(count or 0)


async def test_with_a_key_store_of_its_own_keys_stay_there_and_a_records_backup_reerases(
    settings: Settings, scratch: Callable[[], Awaitable[Scratch]], tmp_path: Path
) -> None:
    records, keys = await scratch(), await scratch()
    async with records.engine.begin() as connection:
        await connection.run_sync(upgrade)
    async with keys.engine.begin() as connection:
        await connection.run_sync(upgrade_keystore)
        # The key store's database holds the key store and nothing else.
        tables = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN "
                "('pg_catalog', 'information_schema', 'keystore')"
            )
        )
        assert tables == 0
    own = settings.model_copy(
        update={
            "database_url": SecretStr(records.url),
            "keystore_database_url": SecretStr(keys.url),
            "data_dir": tmp_path / "data",  # a key directory (and journal) of the test's own
        }
    )
    today = datetime.now(ZoneInfo(settings.local_timezone)).date()

    async def write(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await committed(records.engine, work)

    app: Litestar = create_app(own)
    async with serve(app) as client:
        ready = await client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["keystore"] == "ok"
        registrar = _Registrar(write, await _minter(app, write))
        residents = Residents(registrar, app.state.account_secrets)
        subway = await Clients(registrar, PrincipalType.SOURCE).new(
            "ingest:transit", feeds=(SUBWAY,)
        )
        erased, kept = await residents.new(), await residents.new()
        kept_card = card_of(700_102)
        await _fill(client, erased, subway, card_of(700_101), today, 61_000)
        await _fill(client, kept, subway, kept_card, today, 62_000)

        # Every data key is in the key store's database; the records database holds none.
        assert await _keys_of(keys.engine, erased.id) == 1
        assert await _keys_of(keys.engine, kept.id) == 1
        async with records.engine.connect() as connection:
            assert await connection.scalar(select(func.count()).select_from(DataKey)) == 0

        # The records cluster's backup: a plain dump of the whole records database.
        dump, keys_dump = tmp_path / "records.sql", tmp_path / "keys.sql"
        await _run(_PG_BIN / "pg_dump", "--no-owner", "--file", dump, records.url)
        await _run(_PG_BIN / "pg_dump", "--no-owner", "--file", keys_dump, keys.url)
        erasure = await client.post(
            "/v1/me/erasure", json={"password": erased.password}, headers=erased.headers()
        )
        assert erasure.status_code == 200, erasure.text
        assert await _keys_of(keys.engine, erased.id) == 0
        assert await _keys_of(keys.engine, kept.id) == 1

    restored = await scratch()
    await _run(
        _PG_BIN / "psql", "--quiet", "--set", "ON_ERROR_STOP=1", "--file", dump, restored.url
    )  # fmt: skip
    back = await _held(restored.engine, erased.id)
    assert back["accounts"] == back["links"] == 1, back
    assert back["records"] > 0, back

    again: Litestar = create_app(own.model_copy(update={"database_url": SecretStr(restored.url)}))
    async with serve(again) as client:
        gate: StartupGate = again.state.startup_gate
        assert await gate.wait(60)
        assert (await client.get("/health/ready")).status_code == 200
        await _check_served(client, erased, kept, kept_card, today)
    assert set((await _held(restored.engine, erased.id)).values()) == {0}
    assert await _keys_of(keys.engine, erased.id) == 0
    async with keys.engine.connect() as connection:
        assert await current_revisions(connection, keystore=True) == heads(keystore=True)

    # The other way round: the key store's backup from before the erasure restored beside the
    # current records. Only the erased resident's key is back, and the reapply destroys it.
    old_keys = await scratch()
    await _run(
        _PG_BIN / "psql", "--quiet", "--set", "ON_ERROR_STOP=1", "--file", keys_dump, old_keys.url
    )  # fmt: skip
    assert await _keys_of(old_keys.engine, erased.id) == 1
    beside: Litestar = create_app(
        own.model_copy(update={"keystore_database_url": SecretStr(old_keys.url)})
    )
    async with serve(beside) as client:
        gate = beside.state.startup_gate
        assert await gate.wait(60)
        await _check_served(client, erased, kept, kept_card, today)
    assert await _keys_of(old_keys.engine, erased.id) == 0
    assert await _keys_of(old_keys.engine, kept.id) == 1


async def test_a_records_only_dump_beside_the_current_key_store_reerases_before_ready(
    committing_client: httpx.AsyncClient,
    committing_residents: Residents,
    committing_sources: Clients,
    settings: Settings,
    database_url: str,
    scratch: Callable[[], Awaitable[Scratch]],
    tmp_path: Path,
) -> None:
    client = committing_client
    today = datetime.now(ZoneInfo(settings.local_timezone)).date()
    subway = await committing_sources.new("ingest:transit", feeds=(SUBWAY,))
    erased, kept = await committing_residents.new(), await committing_residents.new()
    kept_card = card_of(700_202)
    await _fill(client, erased, subway, card_of(700_201), today, 61_000)
    await _fill(client, kept, subway, kept_card, today, 62_000)

    records = tmp_path / "records.sql"
    await _run(
        _PG_BIN / "pg_dump", "--no-owner", "--exclude-schema=keystore", "--file", records,
        _libpq(database_url),
    )  # fmt: skip
    erasure = await client.post(
        "/v1/me/erasure", json={"password": erased.password}, headers=erased.headers()
    )
    assert erasure.status_code == 200, erasure.text

    # The restore: the records from before the erasure, the key store as it is now.
    restored = await scratch()
    current_keys = tmp_path / "keystore.sql"
    await _run(
        _PG_BIN / "pg_dump", "--no-owner", "--schema=keystore", "--file", current_keys,
        _libpq(database_url),
    )  # fmt: skip
    for dump in (records, current_keys):
        await _run(
            _PG_BIN / "psql", "--quiet", "--set", "ON_ERROR_STOP=1", "--file", dump, restored.url
        )  # fmt: skip
    back = await _held(restored.engine, erased.id)
    assert back["accounts"] == back["links"] == 1, back
    assert back["data_keys"] == 0, back

    app: Litestar = create_app(
        settings.model_copy(update={"database_url": SecretStr(restored.url)})
    )
    async with serve(app) as restarted:
        gate: StartupGate = app.state.startup_gate
        assert await gate.wait(60)
        assert (await restarted.get("/health/ready")).status_code == 200
        await _check_served(restarted, erased, kept, kept_card, today)
    assert set((await _held(restored.engine, erased.id)).values()) == {0}


async def test_an_app_refuses_to_start_on_its_own_key_store_while_the_records_hold_keys(
    settings: Settings, scratch: Callable[[], Awaitable[Scratch]], tmp_path: Path
) -> None:
    # Pointing BANK_KEYSTORE_DATABASE_URL at a new database before moving the keys would read
    # every resident as erased and make new version-1 keys beside the old ones.
    records, keys = await scratch(), await scratch()
    async with records.engine.begin() as connection:
        await connection.run_sync(upgrade)
        await connection.execute(
            insert(DataKey).values(
                resident_id=uuid.uuid4(), version=1, wrapped_key=b"k", kek_version=1, seals=1
            )
        )
    async with keys.engine.begin() as connection:
        await connection.run_sync(upgrade_keystore)
    own = settings.model_copy(
        update={
            "database_url": SecretStr(records.url),
            "keystore_database_url": SecretStr(keys.url),
            "data_dir": tmp_path / "data",
        }
    )
    with pytest.raises(BaseExceptionGroup) as refused:  # the lifespan's task group's
        async with serve(create_app(own)):
            pass
    assert refused.group_contains(KeysLeftBehind, match="move them")
    async with records.engine.begin() as connection:
        await connection.execute(text("TRUNCATE keystore.data_keys"))
    async with serve(create_app(own)) as client:
        assert (await client.get("/health/ready")).status_code == 200


async def test_a_key_store_database_that_does_not_answer_is_503_and_not_ready(
    settings: Settings, scratch: Callable[[], Awaitable[Scratch]], tmp_path: Path
) -> None:
    records, keys = await scratch(), await scratch()
    async with records.engine.begin() as connection:
        await connection.run_sync(upgrade)
    async with keys.engine.begin() as connection:
        await connection.run_sync(upgrade_keystore)
    own = settings.model_copy(
        update={
            "database_url": SecretStr(records.url),
            "keystore_database_url": SecretStr(keys.url),
            "data_dir": tmp_path / "data",
        }
    )

    async def write(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await committed(records.engine, work)

    today = datetime.now(ZoneInfo(settings.local_timezone)).date()
    app: Litestar = create_app(own)
    async with serve(app) as client:
        registrar = _Registrar(write, await _minter(app, write))
        resident = await Residents(registrar, app.state.account_secrets).new()
        day = {"day": today.isoformat(), "steps": 4321, "platform": "healthkit"}
        pushed = await client.post("/v1/me/steps", json={"days": [day]}, headers=resident.headers())
        assert pushed.status_code == 200, pushed.text

    # Nothing listens on port 1: the key store's database is down, the records' is up.
    down = own.model_copy(
        update={"keystore_database_url": SecretStr("postgresql://bank@127.0.0.1:1/keys")}
    )
    app = create_app(down)
    async with serve(app) as client:
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["keystore"] == "unreachable"
        week = {"from": today.isoformat(), "to": today.isoformat()}
        read = await client.get("/v1/me/steps", params=week, headers=resident.headers())
        assert read.status_code == 503, read.text
        assert read.headers["retry-after"]
        assert (await client.get("/problems/")).status_code == 200  # public routes still work
