"""The erasure journal in the vault: an erasure is journalled before its transaction commits, a
journalled resident gets no data key (nor a seal) by any path, and reapplying the journal erases
again whoever a restored database brought back, once, logged and counted."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from prometheus_client import REGISTRY
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.app import PACKAGES, create_app
from bank.auth.models import TokenFamily
from bank.cli import main as cli
from bank.crypto.erasure_journal import ErasureEntry
from bank.crypto.keystore import DataKey, KeyStore, ResidentErased
from bank.crypto.local_provider import JOURNAL_FILE, LocalKeyProvider
from bank.crypto.provider import KeyProviderError
from bank.db import Database, make_session_factory
from bank.http.startup_gate import StartupGate
from bank.identity.models import Account
from bank.settings import Settings
from bank.vault.erasure import erase_resident
from bank.vault.exports import build_export
from bank.vault.models import ErasureReceipt, Export, Link, Record, StepDay
from bank.vault.reader import VaultReader
from bank.vault.reapply import Reapplied, found_in_database, reapply_erasures
from bank.vault.rotation import rotate_kek
from bank.vault.rules.steps import StepDayIn
from bank.vault.steps import STEPS, ingest_step_days
from tests.bank.test_problems import assert_problem
from tests.bank.vault.conftest import ClientPrincipal, Clients, Residents
from tests.bank.vault.test_sources_api import (
    LINKS,
    SUBWAY,
    TAPS,
    card_of,
    link_card,
    ride,
)
from tests.conftest import serve

Client = httpx.AsyncClient
TODAY = date(2026, 11, 20)
REPOSITORY = Path(__file__).resolve().parents[3]


@pytest.fixture
def today(settings: Settings) -> date:
    return datetime.now(ZoneInfo(settings.local_timezone)).date()


async def _journal(keys: KeyStore, resident_id: uuid.UUID) -> ErasureEntry:
    """What a restore leaves behind: the journal names a resident the database still holds."""
    entry = ErasureEntry(resident_id, datetime.now(UTC), uuid.uuid4())
    await keys.journal_erasure(entry)
    return entry


async def _key_versions(session: AsyncSession, resident_id: uuid.UUID) -> list[int]:
    rows = await session.scalars(select(DataKey.version).where(DataKey.resident_id == resident_id))
    return sorted(rows)


def _account() -> Account:
    return Account(
        kind="resident",
        email_index=uuid.uuid4().hex,
        email_sealed=b"\x00" * 40,
        password_hash="$argon2id$not-used",
    )


def _days(steps: int, count: int = 3) -> list[StepDayIn]:
    return [
        StepDayIn(
            day=TODAY - timedelta(days=n), steps=steps + n, hourly=None,
            platform="healthkit", method="automatic", device_id="iphone-15",
        )
        for n in range(count)
    ]  # fmt: skip


# --- erasure writes the journal first ---------------------------------------------------------


async def test_an_erasure_is_journalled_before_its_transaction_commits(
    db_session: AsyncSession, tmp_path: Path
) -> None:
    provider = LocalKeyProvider(tmp_path / "vault")
    keys = KeyStore(provider)
    account = _account()
    db_session.add(account)
    await db_session.flush()
    await ingest_step_days(db_session, keys, account.id, _days(7000), today=TODAY)

    receipt = await erase_resident(db_session, keys, account, PACKAGES)
    # Nothing is committed yet (the test's transaction rolls back), and the entry is on disk.
    assert LocalKeyProvider(tmp_path / "vault").erasures() == [
        ErasureEntry(account.id, receipt.erased_at, receipt.id)
    ]
    assert (receipt.records_deleted, receipt.keys_destroyed) == (3, 1)


async def test_an_erasure_the_journal_cannot_take_erases_nothing(
    db_session: AsyncSession, tmp_path: Path
) -> None:
    keys = KeyStore(LocalKeyProvider(tmp_path / "vault"))
    account = _account()
    db_session.add(account)
    await db_session.flush()
    await ingest_step_days(db_session, keys, account.id, _days(7000), today=TODAY)
    (tmp_path / "vault" / JOURNAL_FILE).mkdir()  # not a file: every append fails

    with pytest.raises(KeyProviderError, match="erasure journal"):
        await erase_resident(db_session, keys, account, PACKAGES)
    assert await db_session.get(Account, account.id) is not None
    assert await _key_versions(db_session, account.id) == [1]
    count = select(func.count()).select_from(StepDay).where(StepDay.resident_id == account.id)
    assert await db_session.scalar(count) == 3


# --- no new data key, no seal, for a journalled resident -------------------------------------


async def test_the_key_store_makes_no_first_key_for_a_journalled_resident(
    db_session: AsyncSession, tmp_path: Path
) -> None:
    keys = KeyStore(LocalKeyProvider(tmp_path / "vault"))
    account = _account()
    db_session.add(account)
    await db_session.flush()
    await _journal(keys, account.id)
    for has_key in (False, True):
        with pytest.raises(ResidentErased):
            await keys.for_sealing(db_session, account.id, 1, has_key=has_key)
    assert await _key_versions(db_session, account.id) == []
    other = _account()
    db_session.add(other)
    await db_session.flush()
    assert (await keys.for_sealing(db_session, other.id, 1, has_key=False)).version == 1


async def test_a_restored_key_neither_seals_nor_rotates_for_a_journalled_resident(
    db_session: AsyncSession, tmp_path: Path
) -> None:
    # A full backup restored: the resident's key is back, the journal names them.
    keys = KeyStore(LocalKeyProvider(tmp_path / "vault"), max_seals=3)
    account = _account()
    db_session.add(account)
    await db_session.flush()
    await keys.for_sealing(db_session, account.id, 2, has_key=False)
    await _journal(keys, account.id)
    with pytest.raises(ResidentErased):  # a reservation within the key's budget
        await keys.for_sealing(db_session, account.id, 1)
    with pytest.raises(ResidentErased):  # past the budget: the next version is not made
        await keys.for_sealing(db_session, account.id, 3)
    assert await _key_versions(db_session, account.id) == [1]


async def test_a_journalled_resident_pushing_steps_is_gone_and_gets_no_key(
    client: Client, app: Litestar, residents: Residents, db_session: AsyncSession, today: date
) -> None:
    resident, other = await residents.new(), await residents.new()
    await _journal(app.state.keystore, resident.id)
    days = {"days": [{"day": (today - timedelta(days=1)).isoformat(), "steps": 4321,
                      "platform": "healthkit"}]}  # fmt: skip
    pushed = await client.post("/v1/me/steps", json=days, headers=resident.headers())
    assert_problem(pushed, 401, "account-gone")
    assert await _key_versions(db_session, resident.id) == []
    assert (await client.post("/v1/me/steps", json=days, headers=other.headers())).is_success


async def test_a_journalled_resident_linking_a_card_is_gone_and_gets_no_key(
    client: Client, app: Litestar, residents: Residents, db_session: AsyncSession
) -> None:
    resident = await residents.new()
    await _journal(app.state.keystore, resident.id)
    body = {"kind": "transit_card", "card_number": card_of(9_001)}
    linked = await client.post(LINKS, json=body, headers=resident.headers())
    assert_problem(linked, 401, "account-gone")
    assert await _key_versions(db_session, resident.id) == []


@pytest.mark.parametrize("keys_restored", [True, False], ids=["full-restore", "records-only"])
async def test_taps_for_a_journalled_resident_are_refused_and_the_rest_of_the_feed_stored(
    client: Client,
    app: Litestar,
    residents: Residents,
    sources: Clients,
    db_session: AsyncSession,
    today: date,
    keys_restored: bool,
) -> None:
    subway: ClientPrincipal = await sources.new("ingest:transit", feeds=(SUBWAY,))
    erased, kept = await residents.new(), await residents.new()
    erased_card, kept_card = card_of(9_100 + keys_restored), card_of(9_200 + keys_restored)
    await link_card(client, erased, erased_card)  # the link made the resident's first key
    await link_card(client, kept, kept_card)
    if not keys_restored:  # a records backup restored beside a key store that never had them
        await db_session.execute(delete(DataKey).where(DataKey.resident_id == erased.id))
        await db_session.commit()
    versions = await _key_versions(db_session, erased.id)
    await _journal(app.state.keystore, erased.id)

    day = today - timedelta(days=1)
    taps = [*ride(erased_card, day, 1), *ride(kept_card, day, 1)]
    response = await client.post(
        TAPS, json={"taps": taps}, headers=subway.headers("ingest:transit")
    )
    assert response.status_code == 200, response.text
    outcomes = [result["outcome"] for result in response.json()["results"]]
    assert outcomes == ["refused", "refused", "stored", "stored"]
    assert await _key_versions(db_session, erased.id) == versions
    stored = select(Record.resident_id).where(Record.resident_id.in_([erased.id, kept.id]))
    assert list(await db_session.scalars(stored)) == [kept.id, kept.id]


async def test_an_export_for_a_journalled_resident_makes_no_key(
    client: Client, app: Litestar, residents: Residents, db_session: AsyncSession
) -> None:
    resident = await residents.new()
    requested = await client.post("/v1/me/exports/", headers=resident.headers())
    assert requested.status_code == 202, requested.text
    await _journal(app.state.keystore, resident.id)
    export_id = uuid.UUID(requested.json()["id"])
    with pytest.raises(ResidentErased):
        await build_export(
            db_session, app.state.keystore, resident.id, export_id, PACKAGES,
            zone=ZoneInfo("Asia/Tokyo"),
        )  # fmt: skip
    assert await _key_versions(db_session, resident.id) == []
    export = await db_session.get(Export, (resident.id, export_id))
    assert export is not None
    assert export.sealed_zip is None


# --- reapplying the journal -------------------------------------------------------------------


def _reapplied_total() -> float:
    return REGISTRY.get_sample_value("bank_erasures_reapplied_total") or 0.0


async def _holdings(session: AsyncSession, resident_id: uuid.UUID) -> dict[str, int]:
    columns = {
        "accounts": Account.id,
        "keys": DataKey.resident_id,
        "steps": StepDay.resident_id,
        "links": Link.resident_id,
        "sessions": TokenFamily.account_id,
    }
    return {
        name: int(await session.scalar(select(func.count()).where(column == resident_id)) or 0)
        for name, column in columns.items()
    }


async def test_reapplying_erases_journalled_residents_once_and_no_one_else(
    vault: AsyncEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provider = LocalKeyProvider(tmp_path / "vault")
    keys = KeyStore(provider)
    back, keys_only, kept = _account(), _account(), _account()
    async with AsyncSession(vault, expire_on_commit=False) as session, session.begin():
        session.add_all([back, keys_only, kept])
        await session.flush()
        for account, steps in ((back, 7000), (keys_only, 8000), (kept, 9000)):
            await ingest_step_days(session, keys, account.id, _days(steps), today=TODAY)
    # `keys_only`: erased for real, then a key store backup restored over the live one.
    async with AsyncSession(vault, expire_on_commit=False) as session, session.begin():
        gone = await session.get(Account, keys_only.id)
        assert gone is not None
        restored_keys = (
            await session.scalars(select(DataKey).where(DataKey.resident_id == keys_only.id))
        ).all()
        copies = [
            DataKey(
                resident_id=key.resident_id, version=key.version, wrapped_key=key.wrapped_key,
                kek_version=key.kek_version, seals=key.seals,
            )
            for key in restored_keys
        ]  # fmt: skip
        receipt = await erase_resident(session, keys, gone, PACKAGES)
        session.add_all(copies)
    back_entry = await _journal(keys, back.id)
    never_here = await _journal(keys, uuid.uuid4())
    journal = provider.erasures()
    before = _reapplied_total()
    capsys.readouterr()

    async with AsyncSession(vault, expire_on_commit=False) as session, session.begin():
        outcome = await reapply_erasures(session, keys, PACKAGES)
    assert (outcome.journalled, outcome.erased) == (3, 2)
    assert (outcome.records_deleted, outcome.keys_destroyed) == (3, 2)
    assert _reapplied_total() == before + 2
    logged = capsys.readouterr().out
    assert '"event": "vault.erasure_reapplied"' in logged
    assert '"erased": 2' in logged
    assert str(never_here.resident_id) not in logged

    async with AsyncSession(vault) as session:
        for resident in (back.id, keys_only.id):
            assert await _holdings(session, resident) == dict.fromkeys(
                ("accounts", "keys", "steps", "links", "sessions"), 0
            )
        assert (await _holdings(session, kept.id))["steps"] == 3
        assert await _key_versions(session, kept.id) == [1]
        # The receipt a restore lost is back, under the journal's own id and time.
        restored_receipt = await session.get(ErasureReceipt, back_entry.receipt_id)
        assert restored_receipt is not None
        assert restored_receipt.erased_at == back_entry.erased_at
        assert restored_receipt.resident_id == back.id
        receipts = select(ErasureReceipt.id).where(ErasureReceipt.resident_id == keys_only.id)
        assert list(await session.scalars(receipts)) == [receipt.id]  # kept, not doubled

    async with AsyncSession(vault) as session, session.begin():  # idempotent, cheap
        again = await reapply_erasures(session, keys, PACKAGES)
    assert (again.journalled, again.erased, again.records_deleted) == (3, 0, 0)
    assert provider.erasures() == journal  # reapplying journals nothing new
    assert _reapplied_total() == before + 2


async def test_reapplying_an_empty_journal_touches_nothing(
    vault: AsyncEngine, tmp_path: Path
) -> None:
    keys = KeyStore(LocalKeyProvider(tmp_path / "vault"))
    async with AsyncSession(vault) as session, session.begin():
        outcome = await reapply_erasures(session, keys, PACKAGES)
    assert (outcome.journalled, outcome.erased) == (0, 0)
    assert not (tmp_path / "vault" / JOURNAL_FILE).exists()


async def test_bank_erasures_reapply_erases_and_prints_counts(
    vault: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = KeyStore(LocalKeyProvider(tmp_path / "keys" / "vault"))  # the CLI's, from data_dir
    back = _account()
    async with AsyncSession(vault, expire_on_commit=False) as session, session.begin():
        session.add(back)
        await session.flush()
        await ingest_step_days(session, keys, back.id, _days(7000), today=TODAY)
    await _journal(keys, back.id)
    url = vault.url.set(drivername="postgresql").render_as_string(hide_password=False)
    monkeypatch.setenv("BANK_DATABASE_URL", url)
    monkeypatch.setenv("BANK_DATA_DIR", str(tmp_path))

    async def reapply() -> dict[str, int]:
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["erasures", "reapply"])
        assert result.exit_code == 0, result.output
        summary: dict[str, int] = json.loads(result.output.strip().splitlines()[-1])
        return summary

    assert await reapply() == {
        "journalled": 1, "erased": 1, "records_deleted": 3, "keys_destroyed": 1
    }  # fmt: skip
    assert await reapply() == {
        "journalled": 1, "erased": 0, "records_deleted": 0, "keys_destroyed": 0
    }  # fmt: skip
    async with AsyncSession(vault) as session:
        assert await session.get(Account, back.id) is None


async def test_an_unreadable_journal_keeps_the_app_unready_until_it_reads(
    settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    journal = tmp_path / "keys" / "vault" / JOURNAL_FILE
    journal.parent.mkdir(parents=True)
    entry = ErasureEntry(uuid.uuid4(), datetime.now(UTC), uuid.uuid4())
    journal.write_bytes(b"not an entry\n" + entry.line())
    own = settings.model_copy(update={"data_dir": tmp_path})
    app = create_app(own, database=Database(sessions=make_session_factory(engine)))
    async with serve(app) as client:
        response = await client.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["erasures"] == "retrying"  # fails closed, says why
        journal.write_bytes(entry.line())  # the operator restores the journal
        gate: StartupGate = app.state.startup_gate
        assert await gate.wait(60)
        assert (await client.get("/health/ready")).status_code == 200


async def test_the_lookup_takes_a_journal_longer_than_postgresqls_parameter_limit(
    db_session: AsyncSession, tmp_path: Path
) -> None:
    keys = KeyStore(LocalKeyProvider(tmp_path / "vault"))
    account = _account()
    db_session.add(account)
    await db_session.flush()
    journalled = [uuid.uuid4() for _ in range(40_000)] + [account.id]
    assert await found_in_database(db_session, keys, journalled) == {account.id}


async def test_reapplies_in_several_processes_at_once_erase_each_resident_once(
    vault: AsyncEngine, tmp_path: Path
) -> None:
    keys = KeyStore(LocalKeyProvider(tmp_path / "vault"))
    back = [_account() for _ in range(3)]
    async with AsyncSession(vault, expire_on_commit=False) as session, session.begin():
        session.add_all(back)
        await session.flush()
        for account in back:
            await ingest_step_days(session, keys, account.id, _days(7000), today=TODAY)
    for account in back:
        await _journal(keys, account.id)

    async def reapply() -> Reapplied:
        async with AsyncSession(vault) as session, session.begin():
            return await reapply_erasures(session, keys, PACKAGES)

    outcomes = await asyncio.gather(*(reapply() for _ in range(4)))
    assert sorted(outcome.erased for outcome in outcomes) == [0, 0, 0, 3]
    assert sum(outcome.records_deleted for outcome in outcomes) == 9
    async with AsyncSession(vault) as session:
        receipts = select(func.count()).where(
            ErasureReceipt.resident_id.in_([account.id for account in back])
        )
        assert await session.scalar(receipts) == 3


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    residents=st.lists(
        st.tuples(st.booleans(), st.integers(min_value=0, max_value=3)), min_size=1, max_size=5
    )
)
async def test_reapplying_erases_exactly_the_journalled_residents(
    vault: AsyncEngine, tmp_path: Path, residents: list[tuple[bool, int]]
) -> None:
    keys = KeyStore(LocalKeyProvider(tmp_path / uuid.uuid4().hex))  # a journal per example
    accounts = [_account() for _ in residents]
    async with AsyncSession(vault, expire_on_commit=False) as session, session.begin():
        session.add_all(accounts)
        await session.flush()
        for account, (_, days) in zip(accounts, residents, strict=True):
            if days:
                await ingest_step_days(session, keys, account.id, _days(5000, days), today=TODAY)
    journalled = [a for a, (erased, _) in zip(accounts, residents, strict=True) if erased]
    for account in journalled:
        await _journal(keys, account.id)
    before = {}
    async with AsyncSession(vault) as session:
        for account in accounts:
            before[account.id] = await _holdings(session, account.id)

    async with AsyncSession(vault) as session, session.begin():
        outcome = await reapply_erasures(session, keys, PACKAGES)
    assert outcome.erased == len(journalled)
    assert outcome.records_deleted == sum(before[a.id]["steps"] for a in journalled)
    async with AsyncSession(vault) as session:
        for account in accounts:
            held = await _holdings(session, account.id)
            if account in journalled:
                assert held == dict.fromkeys(held, 0)
            else:
                assert held == before[account.id]
    async with AsyncSession(vault) as session, session.begin():
        assert (await reapply_erasures(session, keys, PACKAGES)).erased == 0


async def test_bank_worker_erases_journalled_residents_before_its_first_job(
    vault: AsyncEngine, tmp_path: Path
) -> None:
    """A worker started on a restored database erases whom the journal names before it takes
    a job: a queued export of theirs must never be built."""
    keys = KeyStore(LocalKeyProvider(tmp_path / "keys" / "vault"))  # the worker's, from data_dir
    back = _account()
    async with AsyncSession(vault, expire_on_commit=False) as session, session.begin():
        session.add(back)
        await session.flush()
        await ingest_step_days(session, keys, back.id, _days(7000), today=TODAY)
    await _journal(keys, back.id)
    url = vault.url.set(drivername="postgresql").render_as_string(hide_password=False)
    env = {**os.environ, "BANK_DATABASE_URL": url, "BANK_DATA_DIR": str(tmp_path),
           "BANK_LOG_FORMAT": "json", "BANK_EMBEDDED_WORKER": "false"}  # fmt: skip
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log_file:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bank.cli", "worker", "--queue", "nothing-queued-here",
            cwd=REPOSITORY, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        async with AsyncSession(vault) as session:
            for _ in range(600):  # up to a minute: the worker's start, not a timing claim
                if await session.get(Account, back.id) is None:
                    break
                session.expire_all()
                await asyncio.sleep(0.1)
            assert await session.get(Account, back.id) is None, log_path.read_text()
            rows = await session.scalar(
                select(func.count()).select_from(StepDay).where(StepDay.resident_id == back.id)
            )
            assert rows == 0
    finally:
        worker.terminate()
        await asyncio.wait_for(worker.wait(), timeout=30)
    assert '"vault.erasure_reapplied"' in log_path.read_text()


async def test_a_kek_rotation_destroys_a_journalled_residents_restored_key(
    vault: AsyncEngine, tmp_path: Path
) -> None:
    """A key store restored from before an erasure, rotated before anything reapplied the
    journal: the erased resident's key is destroyed, not carried onto the new KEK."""
    provider = LocalKeyProvider(tmp_path / "vault")
    keys = KeyStore(provider)
    erased, kept = _account(), _account()
    async with AsyncSession(vault, expire_on_commit=False) as session, session.begin():
        session.add_all([erased, kept])
        await session.flush()
        for account in (erased, kept):
            await ingest_step_days(session, keys, account.id, _days(6000), today=TODAY)
    await _journal(keys, erased.id)
    summary = await rotate_kek(vault, provider, batch_size=1)
    assert summary.new_version == 2
    async with AsyncSession(vault) as session:
        assert await _key_versions(session, erased.id) == []
        assert await _key_versions(session, kept.id) == [1]
        under = await session.scalar(
            select(DataKey.kek_version).where(DataKey.resident_id == kept.id)
        )
        assert under == 2
        reader = VaultReader(session, KeyStore(LocalKeyProvider(tmp_path / "vault")))
        opened = await reader.everything(STEPS, kept.id, TODAY - timedelta(days=5), TODAY)
        assert sorted(day.payload.steps for day in opened) == [6000, 6001, 6002]
