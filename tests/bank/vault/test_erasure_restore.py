"""A full dump taken before an erasure, restored after it, never serves the erased resident: the
app started on the restored database with the live key directory erases them again (the erasure
journal) before /health/ready turns 200, and serves nothing but probes until then.

The dump is a plain `pg_dump` of the whole database, key store schema included: the worst case
of issue 12's finding 2 (45 of 45 records opened after such a restore).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from litestar import Litestar
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bank.app import create_app
from bank.auth.models import TokenFamily
from bank.crypto.keystore import DataKey
from bank.http.startup_gate import StartupGate
from bank.identity.models import Account
from bank.settings import Settings
from bank.vault.models import ErasureReceipt, Link, Record, StepDay
from bank.vault.reapply import _REAPPLY_LOCK
from tests.bank.identity.flows import post_form
from tests.bank.vault.conftest import ClientPrincipal, Clients, Resident, Residents
from tests.bank.vault.test_sources_api import SUBWAY, TAPS, card_of, link_card, ride
from tests.conftest import serve
from tests.scratch import ScratchDatabases, dump, libpq_url, restore

Client = httpx.AsyncClient


async def _fill(
    client: Client, resident: Resident, subway: ClientPrincipal, card: str, today: date, base: int
) -> None:
    """Steps, a linked card and a ride: records, a link and a data key of the resident's."""
    days = [{"day": (today - timedelta(days=n)).isoformat(), "steps": base + n,
             "platform": "healthkit"} for n in range(1, 4)]  # fmt: skip
    pushed = await client.post("/v1/me/steps", json={"days": days}, headers=resident.headers())
    assert pushed.status_code == 200, pushed.text
    await link_card(client, resident, card)
    taps = ride(card, today - timedelta(days=1), 1)
    fed = await client.post(TAPS, json={"taps": taps}, headers=subway.headers("ingest:transit"))
    assert fed.json()["stored"] == 2, fed.text


async def _held(engine: AsyncEngine, resident_id: uuid.UUID) -> dict[str, int]:
    columns = {
        "accounts": Account.id,
        "data_keys": DataKey.resident_id,
        "step_days": StepDay.resident_id,
        "records": Record.resident_id,
        "links": Link.resident_id,
        "sessions": TokenFamily.account_id,
    }
    async with engine.connect() as connection:
        return {
            name: int(
                await connection.scalar(select(func.count()).where(column == resident_id)) or 0
            )
            for name, column in columns.items()
        }


async def test_a_full_dump_restored_after_an_erasure_erases_the_resident_again_before_ready(
    committing_client: Client,
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
    erased_card, kept_card = card_of(700_001), card_of(700_002)
    await _fill(client, erased, subway, erased_card, today, 61_000)
    await _fill(client, kept, subway, kept_card, today, 62_000)

    everything = tmp_path / "everything.sql"
    await dump(libpq_url(database_url), everything)
    erasure = await client.post(
        "/v1/me/erasure", json={"password": erased.password}, headers=erased.headers()
    )
    assert erasure.status_code == 200, erasure.text
    receipt_id = uuid.UUID(erasure.json()["receipt_id"])

    restored = await scratch_databases.new()
    url, engine = restored.url, restored.engine
    await restore(url, everything)
    held = await _held(engine, erased.id)
    assert all(held.values()), held  # the dump brought every kind of row back

    app: Litestar = create_app(settings.model_copy(update={"database_url": SecretStr(url)}))
    # Another process's reapply holds the lock: this one waits, so its state can be watched.
    async with engine.connect() as other_process:
        await other_process.execute(select(func.pg_advisory_xact_lock(_REAPPLY_LOCK)))
        async with serve(app) as restarted:
            waiting = await restarted.get("/health/ready")
            assert waiting.status_code == 503
            assert waiting.json()["erasures"] == "reapplying"
            assert (await restarted.get("/health/live")).status_code == 200
            # A request of the erased resident's arriving now waits at the start-up gate: the
            # restored rows are there and would open (a full dump holds their key).
            week = {"from": (today - timedelta(days=7)).isoformat(), "to": today.isoformat()}
            early = asyncio.create_task(
                restarted.get("/v1/me/steps", params=week, headers=erased.headers())
            )
            await asyncio.sleep(0)  # let it reach the gate before the reapply can go on
            await other_process.rollback()

            gate: StartupGate = app.state.startup_gate
            assert await gate.wait(60)
            ready = await restarted.get("/health/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["erasures"] == "reapplied"
            assert (await early).status_code == 401  # served after the erasure, never before
            await _check_served(restarted, erased, kept, kept_card, today)

    assert await _held(engine, erased.id) == dict.fromkeys(
        ("accounts", "data_keys", "step_days", "records", "links", "sessions"), 0
    )
    async with engine.connect() as connection:
        receipt = await connection.scalar(
            select(ErasureReceipt.id).where(ErasureReceipt.resident_id == erased.id)
        )
    assert receipt == receipt_id  # the receipt the resident was given, under its own id


async def _check_served(
    client: Client, erased: Resident, kept: Resident, kept_card: str, today: date
) -> None:
    week = {"from": (today - timedelta(days=7)).isoformat(), "to": today.isoformat()}
    gone = await client.get("/v1/me/steps", params=week, headers=erased.headers())
    assert gone.status_code == 401, gone.text
    signin = {"email": erased.email, "password": erased.password, "return_to": "/account"}
    refused = await post_form(client, "/signin", signin)
    assert refused.status_code == 401
    assert "bank_session" not in refused.cookies

    steps = await client.get("/v1/me/steps", params=week, headers=kept.headers())
    assert steps.status_code == 200, steps.text
    assert sorted(day["steps"] for day in steps.json()["items"]) == [62_001, 62_002, 62_003]
    taps = await client.get("/v1/me/transit/taps", params=week, headers=kept.headers())
    assert [tap["card_last4"] for tap in taps.json()["items"]] == [kept_card[-4:]] * 2
    signed_in = await post_form(
        client, "/signin", {"email": kept.email, "password": kept.password, "return_to": "/account"}
    )
    assert signed_in.status_code == 303
