"""`bank demo seed`: put a synthetic city into the bank through the real ingest code.

Every record goes through the same validation, routing (card and membership links), sealing
and idempotency as a push over HTTP, so the demo exercises the vault and a second run with the
same arguments changes nothing (every item `unchanged`). One transaction per resident: an
interrupted seed keeps the residents it finished, and re-running completes it.

This module makes the accounts; what each resident has is contributed by the packages: in the
resident's transaction, every package's `seed` hook runs in the packages' order with a
`SeedContext` (the resident's synthetic window, the last day seeded and the city's zone). The
vault's hook (`bank.vault.demo`) links the resident's card and membership and pushes their
steps, taps and checkups; it and the packages above it declare as Protocols what they read of
the context, since none of them may import the synthetic city, which sits here, above them.

Only the first `sign_in_accounts` residents get a password (printed by the command); the rest
cannot sign in until they reset it by email: argon2id costs ~0.1 s a resident, which would
make the first `make run` slow for no benefit.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.keystore import KeyStore
from bank.db import Database
from bank.demo.synth import ResidentWindow, SyntheticCity, SyntheticResident
from bank.identity.accounts import AccountExists, create_account
from bank.identity.models import Account
from bank.identity.protect import AccountSecrets, normalise_email
from bank.package import Package


@dataclass(frozen=True)
class SeedContext:
    """What every package's seed hook is handed for one resident whose account exists."""

    window: ResidentWindow  # the resident and their synthetic records over the seeded days
    end: date  # the last day seeded (yesterday, local): the ingest's "today"
    zone: ZoneInfo  # the city's zone: local days of taps, times of pushes


@dataclass
class SeedSummary:
    residents: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # every hook's, summed
    sign_in: list[tuple[str, str]] = field(default_factory=list)  # (email, password)


async def residents_exist(database: Database) -> bool:
    async with database.sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(Account).where(Account.kind == "resident")
        )
    return bool(count)


async def seed_city(
    database: Database,
    secrets: AccountSecrets,
    keys: KeyStore,
    *,
    residents: int,
    days: int,
    seed: int,
    end: date,
    zone: ZoneInfo,
    packages: Iterable[Package[KeyStore]],
    sign_in_accounts: int = 5,
) -> SeedSummary:
    """Residents 0..residents-1 of city `seed`, each with an account and, in the same
    transaction, every package's seed hook in the packages' order over the `days` days up to
    `end`. The packages are the caller's (`bank.app.PACKAGES`): without the vault, accounts and
    no records."""
    hooks = [package.seed for package in packages if package.seed is not None]
    city = SyntheticCity(seed, residents)
    start = end - timedelta(days=days - 1)
    summary = SeedSummary()
    for window in city.window(start, days):
        with_password = window.resident.index < sign_in_accounts
        context = SeedContext(window, end, zone)
        async with database.unit_of_work() as session:
            resident_id = await _account_id(session, secrets, window.resident, with_password)
            for hook in hooks:
                summary.outcomes.update(await hook(session, keys, resident_id, context))
        summary.residents += 1
        if with_password:
            summary.sign_in.append((window.resident.email, window.resident.password))
    return summary


async def _account_id(
    session: AsyncSession, secrets: AccountSecrets, resident: SyntheticResident, password: bool
) -> uuid.UUID:
    try:
        account = await create_account(
            session, secrets, kind="resident", email=resident.email,
            password=resident.password if password else None,
            verified_at=datetime.now(UTC),
        )  # fmt: skip
        return account.id
    except AccountExists:
        index = secrets.email_index(normalise_email(resident.email))
        existing = await session.scalar(select(Account.id).where(Account.email_index == index))
        assert existing is not None
        return existing
