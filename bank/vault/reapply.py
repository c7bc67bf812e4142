"""Reapplying the erasure journal: every journalled resident a restored database holds is erased
again, at start-up (before /health/ready answers 200) and by `bank erasures reapply`.

The journal (bank.crypto.erasure_journal) lives with the key provider, so a database restored
from a backup taken before an erasure brings the resident's account, records, links and (in a
full backup) data keys back while the journal still names them. One query with the journal's
ids finds who came back; each is erased through `erase_again` (every package's erase hook, the
data keys, the account and what its deletion cascades to) under the journal's own receipt id and
time, and no new journal entry is written. Nothing found costs that one query; an empty journal
costs none.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Uuid, any_, bindparam, func, select, union
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.erasure_journal import ErasureEntry
from bank.crypto.keystore import DataKey, KeyStore
from bank.db import Database
from bank.http.startup_gate import RETRYING, StartupGate
from bank.identity.models import Account
from bank.logs import get_logger
from bank.package import Package
from bank.vault.erasure import erase_again
from bank.vault.models import ErasureReceipt

log = get_logger("bank.vault")

# Reapplies in several processes at once (each web worker starts with one) take turns, so a
# resident is erased by one of them and found gone by the others.
_REAPPLY_LOCK = 0x62616E6B_65726173  # "bankeras"
_MAX_RETRY_DELAY_S = 30.0


@dataclass(frozen=True)
class Reapplied:
    journalled: int  # entries in the journal
    erased: int  # residents found in the database and erased again
    records_deleted: int
    keys_destroyed: int


@functools.cache
def _counter() -> Counter:
    # Made on first use: see bank.vault.unreadable (PROMETHEUS_MULTIPROC_DIR is made after
    # imports when several processes serve).
    return Counter(
        "bank_erasures_reapplied",
        "Residents named by the erasure journal who were found in the database (a restored "
        "backup) and erased again.",
    )


async def found_in_database(
    session: AsyncSession, keys: KeyStore, residents: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of `residents` have an account or a data key here: one query when the key store
    shares the database, one more in its own otherwise (records cannot outlive their account,
    their foreign keys cascade)."""
    if not residents:
        return set()
    # One array parameter, not one bind per id: a journal can outgrow PostgreSQL's 32,767.
    ids = bindparam("ids", list(residents), type_=ARRAY(Uuid()))
    accounts = select(Account.id).where(Account.id == any_(ids))
    if keys.database.separate:
        found = set((await session.scalars(accounts)).all())
        return found | await keys.holders(session, residents)
    query = union(accounts, select(DataKey.resident_id).where(DataKey.resident_id == any_(ids)))
    return set((await session.scalars(select(query.subquery().c[0]))).all())


async def reapply_erasures(
    session: AsyncSession, keys: KeyStore, packages: Iterable[Package[Any]]
) -> Reapplied:
    """Erase again every journalled resident found in the database, in the caller's
    transaction; logged as `vault.erasure_reapplied` (counts only) and counted. Idempotent: a
    second run finds nobody. Raises KeyProviderError if the journal cannot be read (or is
    corrupt): the caller must not declare the database clean then."""
    counter = _counter()  # made before anything is found, so /metrics shows 0 meanwhile
    journal = await keys.erasures()
    if not journal:
        return Reapplied(journalled=0, erased=0, records_deleted=0, keys_destroyed=0)
    await session.execute(select(func.pg_advisory_xact_lock(_REAPPLY_LOCK)))
    latest: dict[uuid.UUID, ErasureEntry] = {}
    for entry in journal:  # oldest first: a resident journalled twice keeps the latest entry
        latest[entry.resident_id] = entry
    found = await found_in_database(session, keys, list(latest))
    records = destroyed = 0
    for resident_id in sorted(found):
        entry = latest[resident_id]
        account = await session.get(Account, resident_id)
        receipt = ErasureReceipt(
            id=entry.receipt_id, resident_id=resident_id, erased_at=entry.erased_at
        )
        receipt = await erase_again(session, keys, account, packages, receipt)
        records += receipt.records_deleted
        destroyed += receipt.keys_destroyed
    outcome = Reapplied(
        journalled=len(journal),
        erased=len(found),
        records_deleted=records,
        keys_destroyed=destroyed,
    )
    counter.inc(len(found))
    log.info(
        "vault.erasure_reapplied",
        journalled=outcome.journalled,
        erased=outcome.erased,
        records_deleted=records,
        keys_destroyed=destroyed,
    )
    return outcome


@dataclass(frozen=True)
class Rebuilt:
    journalled: int  # entries the journal held before
    added: int  # receipts of the database it lacked, appended


async def rebuild_journal(session: AsyncSession, keys: KeyStore) -> Rebuilt:
    """Append to the journal every erasure receipt of the database it lacks (by receipt id),
    oldest first: after the live journal was lost and an older copy put back, the newest
    database's receipts (resident, time, receipt id: the same three fields) restore the rest.
    Idempotent. Run against the newest database only: an older one lacks the latest
    erasures."""
    journal = await keys.erasures()
    known = {entry.receipt_id for entry in journal}
    receipts = await session.execute(
        select(ErasureReceipt.resident_id, ErasureReceipt.erased_at, ErasureReceipt.id).order_by(
            ErasureReceipt.erased_at, ErasureReceipt.id
        )
    )
    missing = [ErasureEntry(*row) for row in receipts if row.id not in known]
    for entry in missing:
        await keys.journal_erasure(entry)
    log.info("vault.erasure_journal_rebuilt", journalled=len(journal), added=len(missing))
    return Rebuilt(journalled=len(journal), added=len(missing))


async def reapply_on_start(
    database: Database, keys: KeyStore, packages: Iterable[Package[Any]], gate: StartupGate
) -> asyncio.Task[None] | None:
    """The start-up reapply. Reading the journal and the one query happen before the app
    serves: when nobody journalled is in the database (every start but the first after a
    restore) the gate opens at once and None is returned. Otherwise the erasing runs in a task
    (the gate closed, /health/ready saying why), retried until it succeeds."""
    try:
        journal = await keys.erasures()
        if not journal:
            gate.open()
            return None
        async with database.sessions() as session:
            residents = list({entry.resident_id for entry in journal})
            if not await found_in_database(session, keys, residents):
                gate.open()
                return None
    except Exception as exc:  # noqa: BLE001 - retried (and logged) by the task below
        log.warning("vault.erasure_reapply_failed", error_type=type(exc).__qualname__)
        gate.status = RETRYING
    return asyncio.create_task(_reapply_until_done(database, keys, packages, gate))


async def reapply_before_work(
    database: Database, keys: KeyStore, packages: Iterable[Package[Any]]
) -> None:
    """The reapply of a process with no readiness to hold back (`bank worker`): returns once
    the database holds no journalled resident, retrying until it can tell. A worker must not
    run a job (an export, the points award) for someone a restored backup brought back."""
    await _reapply_until_done(database, keys, packages, StartupGate())


async def _reapply_until_done(
    database: Database, keys: KeyStore, packages: Iterable[Package[Any]], gate: StartupGate
) -> None:
    # Tried until it succeeds: the database or the key provider may come up after the app.
    delay = 0.5
    while True:
        try:
            async with database.sessions() as session, session.begin():
                await reapply_erasures(session, keys, packages)
        except Exception as exc:  # noqa: BLE001 - any failure: stay closed, say so, try again
            gate.status = RETRYING
            log.warning("vault.erasure_reapply_failed", error_type=type(exc).__qualname__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_DELAY_S)
        else:
            gate.open()
            return
