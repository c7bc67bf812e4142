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
from collections.abc import Awaitable, Callable
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
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.app import create_app
from bank.auth.principals import PrincipalType
from bank.crypto.keystore import DataKey, KeysLeftBehind
from bank.db.migrate import current_revisions, heads, upgrade, upgrade_keystore
from bank.http.startup_gate import StartupGate
from bank.settings import Settings
from tests.bank.identity.flows import committed
from tests.bank.vault.conftest import Clients, Residents, _minter, _Registrar
from tests.bank.vault.test_erasure_restore import _check_served, _fill, _held
from tests.bank.vault.test_sources_api import SUBWAY, card_of
from tests.conftest import serve
from tests.scratch import Scratch, ScratchDatabases, dump, libpq_url, restore

pytestmark = pytest.mark.committing
T = TypeVar("T")


@dataclass(frozen=True)
class Separate:
    """A records database and a key store database of its own, each at its history's head,
    and the settings of an app on them (with a key directory and journal of the test's own)."""

    records: Scratch
    keys: Scratch
    settings: Settings

    async def registrar(self, app: Litestar) -> _Registrar:
        """Residents and clients written straight into the records database, with tokens
        `app` accepts (its lifespan must have started)."""

        async def write(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
            return await committed(self.records.engine, work)

        return _Registrar(write, await _minter(app, write))


async def _separate(
    settings: Settings, scratch_databases: ScratchDatabases, tmp_path: Path
) -> Separate:
    records, keys = await scratch_databases.new(), await scratch_databases.new()
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
    return Separate(records, keys, own)


async def _keys_of(engine: AsyncEngine, resident_id: uuid.UUID) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            select(func.count()).where(DataKey.resident_id == resident_id)
        )
    return int(count or 0)


async def test_with_a_key_store_of_its_own_keys_stay_there_and_a_records_backup_reerases(
    settings: Settings, scratch_databases: ScratchDatabases, tmp_path: Path
) -> None:
    separate = await _separate(settings, scratch_databases, tmp_path)
    records, keys, own = separate.records, separate.keys, separate.settings
    async with keys.engine.connect() as connection:
        # The key store's database holds the key store and nothing else.
        tables = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN "
                "('pg_catalog', 'information_schema', 'keystore')"
            )
        )
        assert tables == 0
    today = datetime.now(ZoneInfo(settings.local_timezone)).date()
    app: Litestar = create_app(own)
    async with serve(app) as client:
        ready = await client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["keystore"] == "ok"
        registrar = await separate.registrar(app)
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
        records_dump, keys_dump = tmp_path / "records.sql", tmp_path / "keys.sql"
        await dump(records.url, records_dump)
        await dump(keys.url, keys_dump)
        erasure = await client.post(
            "/v1/me/erasure", json={"password": erased.password}, headers=erased.headers()
        )
        assert erasure.status_code == 200, erasure.text
        assert await _keys_of(keys.engine, erased.id) == 0
        assert await _keys_of(keys.engine, kept.id) == 1

    restored = await scratch_databases.new()
    await restore(restored.url, records_dump)
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
    old_keys = await scratch_databases.new()
    await restore(old_keys.url, keys_dump)
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
    scratch_databases: ScratchDatabases,
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
    await dump(libpq_url(database_url), records, "--exclude-schema=keystore")
    erasure = await client.post(
        "/v1/me/erasure", json={"password": erased.password}, headers=erased.headers()
    )
    assert erasure.status_code == 200, erasure.text

    # The restore: the records from before the erasure, the key store as it is now.
    restored = await scratch_databases.new()
    current_keys = tmp_path / "keystore.sql"
    await dump(libpq_url(database_url), current_keys, "--schema=keystore")
    for dumped in (records, current_keys):
        await restore(restored.url, dumped)
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
    settings: Settings, scratch_databases: ScratchDatabases, tmp_path: Path
) -> None:
    # Pointing BANK_KEYSTORE_DATABASE_URL at a new database before moving the keys would read
    # every resident as erased and make new version-1 keys beside the old ones.
    separate = await _separate(settings, scratch_databases, tmp_path)
    records, own = separate.records, separate.settings
    async with records.engine.begin() as connection:
        await connection.execute(
            insert(DataKey).values(
                resident_id=uuid.uuid4(), version=1, wrapped_key=b"k", kek_version=1, seals=1
            )
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
    settings: Settings, scratch_databases: ScratchDatabases, tmp_path: Path
) -> None:
    separate = await _separate(settings, scratch_databases, tmp_path)
    own = separate.settings
    today = datetime.now(ZoneInfo(settings.local_timezone)).date()
    app: Litestar = create_app(own)
    async with serve(app) as client:
        registrar = await separate.registrar(app)
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
