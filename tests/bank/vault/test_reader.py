"""The one read path: a batch of residents reads exactly what each resident reads alone, each
resident's keys are unwrapped once a batch, erasure mid-batch skips the resident, and a sealed
value copied to another row or revision is left out (marked unreadable) rather than served.

Records go in through the real ingest (steps, a linked card's taps, a linked membership's
checkups) under a real key store on the local key provider.
"""

from __future__ import annotations

import secrets
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bank.crypto.keystore import KeyStore, data_key_aad
from bank.crypto.local_provider import LocalKeyProvider
from bank.crypto.provider import WrappedKey
from bank.crypto.sealing import OpeningKeys
from bank.identity.models import Account
from bank.vault.checkups import CHECKUPS, ingest_checkups
from bank.vault.kinds import RecordKind
from bank.vault.links import LinkKind, Links, member_key
from bank.vault.reader import ALL_DAYS, BatchReader, ResidentRecords, VaultReader
from bank.vault.rules.checkups import CheckupIn, CheckupItemIn
from bank.vault.rules.steps import StepDayIn
from bank.vault.rules.transit import TapIn
from bank.vault.steps import STEPS, ingest_step_days
from bank.vault.transit import TAPS, ingest_taps
from bank.vault.unreadable import Unreadable
from tests.conftest import savepoint_sessions

TODAY = date(2026, 11, 30)
ZONE = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=ZONE)
SOURCE_CLIENT = "reader-test-source"
SUBWAY = "sapporo-subway"
INSURER = "06139981"
KINDS: tuple[RecordKind[Any], ...] = (STEPS, TAPS, CHECKUPS)
WINDOW = 40  # days before TODAY that deposits fall in


class CountingProvider(LocalKeyProvider):
    """The local provider, recording what each unwrap was for (its associated data names the
    resident and the key version)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.unwrapped: list[bytes] = []

    def unwrap(self, wrapped: WrappedKey, *, aad: bytes) -> bytes:
        self.unwrapped.append(aad)
        return super().unwrap(wrapped, aad=aad)


class ErasedMidBatch(KeyStore):
    """The real key store; the residents in `erase` are erased (their data keys destroyed, as
    erasure does first) just before a batch's keys are read, after its rows were."""

    def __init__(self, provider: LocalKeyProvider, erase: Sequence[uuid.UUID]) -> None:
        super().__init__(provider)
        self.erase = list(erase)

    async def for_opening_many(
        self, session: AsyncSession, residents: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, OpeningKeys]:
        for resident in self.erase:
            await self.destroy(session, resident)
        return await super().for_opening_many(session, residents)


@pytest.fixture
def provider(tmp_path: Path) -> CountingProvider:
    return CountingProvider(tmp_path / "vault")


@pytest.fixture
def keys(provider: CountingProvider) -> KeyStore:
    return KeyStore(provider)


# --- deposits through the real ingest ------------------------------------------------------------


@dataclass(frozen=True)
class Deposits:
    """One resident's deposits, as days before TODAY."""

    steps: frozenset[tuple[int, str]]  # (day, source platform)
    rides: frozenset[int]  # an entry and an exit that day
    checkups: frozenset[int]


deposits = st.builds(
    Deposits,
    steps=st.frozensets(
        st.tuples(st.integers(0, WINDOW), st.sampled_from(["healthkit", "tracker"])), max_size=6
    ),
    rides=st.frozensets(st.integers(0, WINDOW), max_size=3),
    checkups=st.frozensets(st.integers(0, WINDOW), max_size=2),
)


async def new_resident(session: AsyncSession) -> uuid.UUID:
    """A bare resident account (the reader never looks past its id)."""
    resident = uuid.uuid4()
    session.add(
        Account(
            id=resident,
            kind="resident",
            email_index=f"reader-{resident}",
            email_sealed=b"\x00",
            password_hash="-",
            status="active",
        )
    )
    await session.flush()
    return resident


def _steps(day: date, source: str) -> StepDayIn:
    steps = 4_000 + 97 * day.toordinal() % 6_000 + len(source)
    hourly = [0] * 24
    hourly[8], hourly[18] = steps // 2, steps - steps // 2
    return StepDayIn(
        day=day, steps=steps, hourly=hourly, platform=source, method="automatic", device_id=None
    )


def _ride(card: str, day: date) -> list[TapIn]:
    start = datetime(day.year, day.month, day.day, 8, 5, tzinfo=ZONE)
    return [
        TapIn(operator=SUBWAY, tap_id=f"{card[-6:]}-{day:%Y%m%d}-{kind}", card_number=card,
              tap_type=kind, tapped_at=at, station=station, line=station[0],
              fare_yen=250 if kind == "exit" else None, fare_product="stored_value")
        for kind, at, station in (("entry", start, "N07"),
                                  ("exit", start + timedelta(minutes=14), "N13"))
    ]  # fmt: skip


def _checkup(member: str, day: date) -> CheckupIn:
    return CheckupIn(
        institution_code="0112345678", exam_id=f"{member}-{day:%Y%m%d}", exam_date=day,
        member_number=member, sex="female", fasting=True,
        items=[CheckupItemIn(item="sbp", value=118 + day.day, unit="mmHg"),
               CheckupItemIn(item="urine_glucose", value="-", unit="")],
    )  # fmt: skip


async def deposit(
    session: AsyncSession, keys: KeyStore, resident: uuid.UUID, deposits: Deposits
) -> None:
    """Push the deposits through the real ingest; every item must be stored."""
    outcomes = []
    if deposits.steps:
        latest_first = sorted(deposits.steps)  # stored out of (day, source) order
        items = [_steps(TODAY - timedelta(days=n), source) for n, source in latest_first]
        outcomes += await ingest_step_days(session, keys, resident, items, today=TODAY)
    links = Links(session, keys)
    if deposits.rides:
        card = f"3147{secrets.randbelow(10**13):013d}"
        await links.add(resident, LinkKind.TRANSIT_CARD, card)
        taps = [tap for n in deposits.rides for tap in _ride(card, TODAY - timedelta(days=n))]
        outcomes += await ingest_taps(
            session, keys, client_id=SOURCE_CLIENT, feeds=[SUBWAY], taps=taps, now=NOW, zone=ZONE
        )
    if deposits.checkups:
        member = f"M{secrets.token_hex(6)}"
        await links.add(resident, LinkKind.INSURER_MEMBER, member_key(INSURER, member))
        pushed = [(INSURER, _checkup(member, TODAY - timedelta(days=n))) for n in deposits.checkups]
        outcomes += await ingest_checkups(
            session, keys, client_id=SOURCE_CLIENT, feeds=[INSURER], checkups=pushed, today=TODAY
        )
    assert [outcome.outcome for outcome in outcomes] == ["stored"] * len(outcomes)


async def everything_alone(
    session: AsyncSession, keys: KeyStore, resident: uuid.UUID, start: date, end: date
) -> dict[str, list[Any]]:
    reader = VaultReader(session, keys)
    return {kind.code: await reader.everything(kind, resident, start, end) for kind in KINDS}


def as_read(records: ResidentRecords) -> dict[str, list[Any]]:
    return {kind.code: records.of(kind) for kind in KINDS}


# --- a batch reads what each resident reads alone ------------------------------------------------

# Whatever plan PostgreSQL picks, a resident's records come in (day, row key) order: an index
# scan would return them so by chance, a bitmap heap scan in the order they were stored (days
# are pushed latest first here), a sequential scan in table order.
SCANS = {
    "index": (),
    "bitmap heap": ("enable_indexscan", "enable_indexonlyscan"),
    "sequential": ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"),
}

_DB_EXAMPLES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_DB_EXAMPLES
@given(
    residents=st.lists(deposits, min_size=1, max_size=6),
    batch_size=st.integers(1, 4),
    bounds=st.tuples(st.integers(-2, WINDOW + 2), st.integers(-2, WINDOW + 2)),
    whole=st.booleans(),
    scan=st.sampled_from(sorted(SCANS)),
)
async def test_a_batch_reads_each_resident_exactly_as_the_resident_reads_alone(
    connection: AsyncConnection,
    keys: KeyStore,
    residents: list[Deposits],
    batch_size: int,
    bounds: tuple[int, int],
    whole: bool,
    scan: str,
) -> None:
    # Each example in a savepoint of its own, with a session of its own inside it.
    savepoint = await connection.begin_nested()
    try:
        async with savepoint_sessions(connection)() as session:
            for setting in SCANS[scan]:
                await session.execute(text(f"SET LOCAL {setting} = off"))
            ids = []
            for resident in residents:
                ids.append(await new_resident(session))
                await deposit(session, keys, ids[-1], resident)
            later, earlier = sorted(bounds)  # days before TODAY: the later bound is the start
            start, end = (
                ALL_DAYS
                if whole
                else (TODAY - timedelta(days=earlier), TODAY - timedelta(days=later))
            )
            await _compare(session, keys, ids, residents, batch_size, start, end)
    finally:
        await savepoint.rollback()


async def _compare(
    session: AsyncSession,
    keys: KeyStore,
    ids: list[uuid.UUID],
    residents: list[Deposits],
    batch_size: int,
    start: date,
    end: date,
) -> None:
    # A resident who deposited nothing has no data key, and nothing a batch could return.
    with_key = [
        resident
        for resident, deposited in zip(ids, residents, strict=True)
        if deposited.steps or deposited.rides or deposited.checkups
    ]
    alone = {
        resident: await everything_alone(session, keys, resident, start, end) for resident in ids
    }
    reader = BatchReader(session, keys, batch_size=batch_size)

    # Every resident there is, in id order (other tests' committed residents may be among them).
    streamed = [records async for records in reader.residents(KINDS, start, end)]
    assert [r.resident_id for r in streamed] == sorted(r.resident_id for r in streamed)
    ours = [records for records in streamed if records.resident_id in alone]
    assert [records.resident_id for records in ours] == sorted(with_key)
    assert {records.resident_id: as_read(records) for records in ours} == {
        resident: alone[resident] for resident in with_key
    }

    # One batch of exactly these residents, in the order given.
    given_order = list(reversed(ids))
    batch = [records async for records in reader.of(given_order, KINDS, start, end)]
    assert [records.resident_id for records in batch] == [r for r in given_order if r in with_key]
    assert all(as_read(records) == alone[records.resident_id] for records in batch)


# --- keys: once per resident and version per batch read ------------------------------------------


async def test_each_residents_keys_are_unwrapped_once_per_batch_read_whatever_the_kinds(
    db_session: AsyncSession, provider: CountingProvider
) -> None:
    # A small seal budget: the second push needs a second key version for every resident.
    keys = KeyStore(provider, max_seals=12)
    everyone = [await new_resident(db_session) for _ in range(5)]
    for resident in everyone:
        first = Deposits(
            frozenset((n, "healthkit") for n in range(10)), frozenset({3}), frozenset({4})
        )
        await deposit(db_session, keys, resident, first)
        second = Deposits(frozenset((n, "tracker") for n in range(10)), frozenset(), frozenset({9}))
        await deposit(db_session, keys, resident, second)
    versions = {
        (row.resident_id, row.version)
        for row in await db_session.execute(
            text("SELECT resident_id, version FROM keystore.data_keys WHERE resident_id = ANY(:r)"),
            {"r": everyone},
        )
    }
    assert {version for _, version in versions} >= {1, 2}

    provider.unwrapped.clear()
    batch = [
        r async for r in BatchReader(db_session, keys, batch_size=2).of(everyone, KINDS, *ALL_DAYS)
    ]
    assert [records.resident_id for records in batch] == everyone
    assert all(len(records.of(STEPS)) == 20 for records in batch)
    assert all(len(records.of(CHECKUPS)) == 2 for records in batch)
    # Every version of every resident's key, each unwrapped exactly once for all three kinds.
    assert Counter(provider.unwrapped) == Counter(
        data_key_aad(resident, version) for resident, version in versions
    )


# --- erasure while a batch is read ---------------------------------------------------------------


async def test_a_resident_erased_after_their_rows_were_read_is_skipped_not_an_error(
    db_session: AsyncSession, provider: CountingProvider
) -> None:
    everyone = [await new_resident(db_session) for _ in range(3)]
    for resident in everyone:
        both = Deposits(frozenset({(2, "healthkit")}), frozenset({2}), frozenset())
        await deposit(db_session, KeyStore(provider), resident, both)
    keys = ErasedMidBatch(provider, erase=[everyone[1]])
    reader = BatchReader(db_session, keys)
    read = [records async for records in reader.of(everyone, [STEPS, TAPS], *ALL_DAYS)]
    assert [records.resident_id for records in read] == [everyone[0], everyone[2]]
    assert all(len(records.of(STEPS)) == 1 and len(records.of(TAPS)) == 2 for records in read)
    streamed = [records.resident_id async for records in reader.residents([STEPS], *ALL_DAYS)]
    assert everyone[1] not in streamed


# --- a sealed value in the wrong row does not open -----------------------------------------------


async def test_an_older_revision_copied_into_the_current_row_is_left_out_not_served(
    db_session: AsyncSession, keys: KeyStore
) -> None:
    resident = await new_resident(db_session)
    day = TODAY - timedelta(days=3)
    first = _steps(day, "healthkit")
    corrected = StepDayIn(
        day=day, steps=first.steps + 500, hourly=None, platform="healthkit", method="manual",
        device_id=None,
    )  # fmt: skip
    [stored] = await ingest_step_days(db_session, keys, resident, [first], today=TODAY)
    [replaced] = await ingest_step_days(db_session, keys, resident, [corrected], today=TODAY)
    assert (stored.outcome, replaced.outcome) == ("stored", "replaced")
    reader = VaultReader(db_session, keys)
    [current] = await reader.everything(STEPS, resident, *ALL_DAYS)
    assert (current.revision, current.payload.steps) == (2, corrected.steps)

    copied = await db_session.execute(
        text(
            "UPDATE step_days SET sealed = r.sealed FROM step_day_revisions AS r "
            "WHERE step_days.resident_id = :resident AND r.resident_id = :resident "
            "AND r.day = step_days.day AND r.source = step_days.source AND r.revision = 1 "
            "RETURNING step_days.revision"
        ),
        {"resident": resident},
    )
    assert copied.scalars().all() == [2]  # the old value, in the row that says revision 2

    await _every_read_leaves_it_out(db_session, keys, STEPS, resident, at=0)


async def test_a_tap_copied_over_another_taps_row_is_left_out_not_served(
    db_session: AsyncSession, keys: KeyStore
) -> None:
    resident = await new_resident(db_session)
    await deposit(db_session, keys, resident, Deposits(frozenset(), frozenset({5}), frozenset()))
    entry, exit_ = await VaultReader(db_session, keys).everything(TAPS, resident, *ALL_DAYS)
    assert (entry.payload.tap_type, exit_.payload.tap_type) == ("entry", "exit")

    copied = await db_session.execute(
        text(
            "UPDATE records SET sealed = other.sealed FROM records AS other "
            "WHERE records.resident_id = :resident AND other.resident_id = :resident "
            "AND records.kind = 'transit_tap' AND other.kind = 'transit_tap' "
            "AND records.natural_key = :exit AND other.natural_key = :entry"
        ),
        {"resident": resident, "entry": entry.natural_key, "exit": exit_.natural_key},
    )
    assert copied.rowcount == 1  # type: ignore[attr-defined]

    await _every_read_leaves_it_out(
        db_session, keys, TAPS, resident, at=[entry, exit_].index(exit_)
    )


async def _every_read_leaves_it_out(
    session: AsyncSession, keys: KeyStore, kind: RecordKind[Any], resident: uuid.UUID, at: int
) -> None:
    """The resident's record at position `at` of the kind does not open: every read marks it
    `Unreadable` (never raises, never serves it) and still serves the others."""
    alone = VaultReader(session, keys)
    page = await alone.page(kind, resident, *ALL_DAYS)
    marker = page[at]
    assert isinstance(marker, Unreadable)
    others = [record for record in page if not isinstance(record, Unreadable)]
    assert len(others) == len(page) - 1
    everything = await alone.everything(kind, resident, *ALL_DAYS)
    assert (list(everything), everything.unreadable) == (others, [marker])
    assert await alone.latest(kind, resident) == page[-1]
    [batch] = [
        records async for records in BatchReader(session, keys).of([resident], [kind], *ALL_DAYS)
    ]
    assert (batch.of(kind), batch.unreadable(kind)) == (others, [marker])
