"""`bank demo seed`: put a synthetic city into the bank through the real ingest code.

Every record goes through the same validation, routing (card and membership links), sealing
and idempotency as a push over HTTP, so the demo exercises the vault and a second run with the
same arguments changes nothing (every item `unchanged`). One transaction per resident: an
interrupted seed keeps the residents it finished, and re-running completes it.

The vault's records are seeded here rather than by a hook of the vault because the synthetic city
(`bank.demo.synth`) sits in the composition root, above the vault; packages above the vault
contribute theirs through their `seed` hook, called with the resident's `ResidentWindow`.

Only the first `sign_in_accounts` residents get a password (printed by the command); the rest
cannot sign in until they reset it by email: argon2id costs ~0.1 s a resident, which would
make the first `make run` slow for no benefit.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.clients import ClientRegistry, Registration
from bank.auth.models import ClientKind, ClientStatus
from bank.db import Database
from bank.demo.synth import ResidentWindow, SyntheticCity, SyntheticResident
from bank.identity.accounts import AccountExists, create_account
from bank.identity.models import Account
from bank.identity.protect import AccountSecrets, normalise_email
from bank.package import Package
from bank.vault import checkups, transit
from bank.vault.errors import LinkTaken
from bank.vault.keystore import KeyStore
from bank.vault.links import LinkKind, Links, member_key, normalise_card_number
from bank.vault.records import ItemResult
from bank.vault.rules.checkups import CheckupIn, CheckupItemIn
from bank.vault.rules.steps import StepDayIn
from bank.vault.rules.transit import TapIn
from bank.vault.steps import ingest_step_days

SEED_CLIENT = "demo-seed"  # recorded as the source of the seeded taps and checkups
SUBWAY = "sapporo-subway"


@dataclass
class SeedSummary:
    residents: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    sign_in: list[tuple[str, str]] = field(default_factory=list)  # (email, password)

    def count(self, results: list[ItemResult]) -> None:
        self.outcomes.update(result.outcome for result in results)


DEMO_APP_REDIRECTS = ("http://127.0.0.1:8080/callback", "jp.example.citybank.demo:/oauth/callback")


async def register_demo_app(database: Database) -> str:
    """An active residents' app client (PKCE, loopback and private-use redirects) for trying the
    sign-in with the printed demo residents; its client_id is printed too."""
    registration = Registration(
        kind=ClientKind.RESIDENT_APP,
        name="Demo residents' app",
        scopes=("account", "records:read", "records:write"),
        redirect_uris=DEMO_APP_REDIRECTS,
    )
    async with database.unit_of_work() as session:
        registry = ClientRegistry(session)
        client = await registry.register(registration)
        await registry.set_status(client.client_id, ClientStatus.ACTIVE)
        return client.client_id


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
    sign_in_accounts: int = 5,
    packages: Iterable[Package[KeyStore]] = (),
) -> SeedSummary:
    """Residents 0..residents-1 of city `seed`, with records for the `days` days up to `end`;
    then, in the resident's transaction, every package's seed hook in the packages' order."""
    city = SyntheticCity(seed, residents)
    start = end - timedelta(days=days - 1)
    summary = SeedSummary()
    for window in city.window(start, days):
        with_password = window.resident.index < sign_in_accounts
        async with database.unit_of_work() as session:
            resident_id = await _seed_resident(
                session, secrets, keys, window, with_password, end, zone, summary
            )
            for package in packages:
                if package.seed is not None:
                    outcomes = await package.seed(session, keys, resident_id, window)
                    summary.outcomes.update(outcomes)
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


async def _link(links: Links, resident_id: uuid.UUID, kind: LinkKind, key: str) -> None:
    with contextlib.suppress(LinkTaken):  # linked by an earlier run
        await links.add(resident_id, kind, key)


async def _seed_resident(
    session: AsyncSession,
    secrets: AccountSecrets,
    keys: KeyStore,
    window: ResidentWindow,
    with_password: bool,
    end: date,
    zone: ZoneInfo,
    summary: SeedSummary,
) -> uuid.UUID:
    resident = window.resident
    resident_id = await _account_id(session, secrets, resident, with_password)
    links = Links(session, keys)
    card = normalise_card_number(resident.card_number)
    await _link(links, resident_id, LinkKind.TRANSIT_CARD, card)
    await _link(
        links, resident_id, LinkKind.INSURER_MEMBER,
        member_key(resident.insurer_number, resident.member_number),
    )  # fmt: skip
    steps = [
        StepDayIn(day=d.day, steps=d.steps, hourly=d.hourly, platform=d.platform,
                  method=d.method, device_id=d.device_id)
        for d in window.steps
    ]  # fmt: skip
    summary.count(await ingest_step_days(session, keys, resident_id, steps, today=end))
    if window.taps:
        taps = [
            TapIn(operator=t.operator, tap_id=t.tap_id, card_number=t.card_number,
                  tap_type=t.tap_type, tapped_at=t.tapped_at, station=t.station, line=t.line,
                  fare_yen=t.fare_yen, fare_product=t.fare_product)
            for t in window.taps
        ]  # fmt: skip
        now = datetime.combine(end + timedelta(days=1), datetime.min.time(), zone)
        summary.count(
            await transit.ingest_taps(
                session, keys, client_id=SEED_CLIENT, feeds=[SUBWAY], taps=taps, now=now,
                zone=zone,
            )
        )  # fmt: skip
    if window.checkups:
        pushed = [
            (c.insurer_number,
             CheckupIn(institution_code=c.institution_code, exam_id=c.exam_id,
                       exam_date=c.exam_date, member_number=c.member_number, sex=c.sex,
                       fasting=c.fasting,
                       items=[CheckupItemIn(item=v.item, value=v.value, unit=v.unit)
                              for v in c.items]))
            for c in window.checkups
        ]  # fmt: skip
        summary.count(
            await checkups.ingest_checkups(
                session, keys, client_id=SEED_CLIENT, feeds=[resident.insurer_number],
                checkups=pushed, today=end,
            )
        )  # fmt: skip
    return resident_id
