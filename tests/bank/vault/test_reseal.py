"""`bank vault reseal`: every format-1 value, in every table that holds sealed values, becomes a
format-2 value bound to its row's revision and opens with the same plaintext through the normal
read paths; a second run finds nothing; a value that does not open is counted and left as it is."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.cli import main as cli
from bank.crypto.keystore import KeyStore
from bank.crypto.local_provider import LocalKeyProvider
from bank.crypto.sealing import Binding, RecordDoesNotOpen, SealingKey, open_sealed, seal
from bank.db import Database, make_session_factory
from bank.db.locks import lock_resident
from bank.identity.models import Account
from bank.vault.checkups import CHECKUPS, CheckupPayload, ItemPayload
from bank.vault.exports import Exports
from bank.vault.links import LinkKind, Links
from bank.vault.models import Export, Link, Record, StepDay, StepDayRevision
from bank.vault.reader import ALL_DAYS, VaultReader
from bank.vault.repository import ResealRows, SealedTable
from bank.vault.reseal import reseal
from bank.vault.steps import STEPS, StepPayload
from bank.vault.transit import TAPS, TapPayload
from bank.vault.unreadable import Unreadable

pytestmark = pytest.mark.committing

TABLES = ("step_days", "step_day_revisions", "records", "links", "exports")
_SEALED_COLUMNS = {
    "step_days": "sealed", "step_day_revisions": "sealed", "records": "sealed",
    "links": "sealed", "exports": "sealed_zip",
}  # fmt: skip
_ENCODE = msgspec.json.encode


def _format_one(
    key: SealingKey, owner: uuid.UUID, kind: str, natural_key: str, plaintext: bytes
) -> bytes:
    """A value as sealing wrote it before revisions were bound (format byte 1), written out here
    byte by byte so the test does not lean on the code it checks (as tests/bank/crypto does)."""
    nonce = os.urandom(12)
    aad = f"{owner}|{kind}|{natural_key}|v1".encode()
    return struct.pack(">BI", 1, key.version) + nonce + key.aead.encrypt(nonce, plaintext, aad)


@pytest.fixture
def keystore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vault: AsyncEngine) -> KeyStore:
    """The key store the command will build from the settings: the local provider's files in
    BANK_DATA_DIR/keys/vault."""
    monkeypatch.setenv("BANK_DATABASE_URL", vault.url.render_as_string(hide_password=False))
    monkeypatch.setenv("BANK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("BANK_KEY_PROVIDER", raising=False)
    return KeyStore(LocalKeyProvider(tmp_path / "keys" / "vault"))


async def _run_command(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, ["vault", "reseal", *args])


def _summary(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def _counts(**counts: int) -> dict[str, int]:
    return {table: counts.get(table, 0) for table in TABLES}


async def _new_resident(session: AsyncSession) -> uuid.UUID:
    resident = uuid.uuid4()
    session.add(
        Account(
            id=resident, kind="resident", email_index=f"reseal-{resident}", email_sealed=b"\x00",
            password_hash="-",
        )
    )  # fmt: skip
    await session.flush()
    return resident


# --- what one resident deposited before the upgrade ------------------------------------------

DAY = date(2026, 10, 1)
REVISED_DAY = date(2026, 10, 2)


@dataclass
class Deposited:
    """One resident's format-1 values and what each holds."""

    resident: uuid.UUID
    step_days: dict[date, StepPayload] = field(default_factory=dict)
    revisions: dict[int, StepPayload] = field(default_factory=dict)  # REVISED_DAY's, by revision
    tap: TapPayload | None = None
    checkup: CheckupPayload | None = None
    link_id: uuid.UUID = field(default_factory=uuid.uuid4)
    export_id: uuid.UUID = field(default_factory=uuid.uuid4)
    archive: bytes = b""


def _steps(steps: int) -> StepPayload:
    return StepPayload(steps=steps, hourly=None, method="automatic", device_id=None)


async def _deposit_format_one(session: AsyncSession, keystore: KeyStore, number: int) -> Deposited:
    """A step day at revision 1, one at revision 3 with its revisions 1 and 2, a tap at
    revision 1, a checkup at revision 2, a link and an export: all sealed as format 1."""
    resident = await _new_resident(session)
    key = await keystore.for_sealing(session, resident, 8)
    made = Deposited(resident)

    def sealed(kind: str, natural_key: str, plaintext: bytes) -> bytes:
        return _format_one(key, resident, kind, natural_key, plaintext)

    made.step_days = {DAY: _steps(1000 + number), REVISED_DAY: _steps(3000 + number)}
    made.revisions = {1: _steps(1100 + number), 2: _steps(2200 + number)}
    revision_of = {DAY: 1, REVISED_DAY: 3}
    for day, payload in made.step_days.items():
        natural_key = STEPS.natural_key(day, "healthkit")
        session.add(
            StepDay(
                resident_id=resident, day=day, source="healthkit", revision=revision_of[day],
                sealed=sealed("steps", natural_key, _ENCODE(payload)),
            )
        )  # fmt: skip
    for revision, payload in made.revisions.items():
        natural_key = STEPS.natural_key(REVISED_DAY, "healthkit")
        session.add(
            StepDayRevision(
                resident_id=resident, day=REVISED_DAY, source="healthkit", revision=revision,
                sealed=sealed("steps", natural_key, _ENCODE(payload)),
            )
        )  # fmt: skip
    made.tap = TapPayload(
        operator="sapporo-subway", tap_id=f"t-{number}", card_last4="1234", tap_type="entry",
        tapped_at=datetime(2026, 10, 1, 8, 0, tzinfo=UTC), station="大通", line="南北線",
        fare_yen=None, fare_product="SAPICA",
    )  # fmt: skip
    made.checkup = CheckupPayload(
        institution_code="0112345678", exam_id=f"e-{number}", exam_date=DAY,
        insurer_number="01234567", sex="F", fasting=True,
        items=(ItemPayload(item="BMI", value=21.5, unit="kg/m2", jlac10="9N011", loinc="39156-5"),),
    )  # fmt: skip
    records = [
        ("transit_tap", f"sapporo-subway/t-{number}", 1, _ENCODE(made.tap)),
        ("checkup", f"0112345678/e-{number}", 2, _ENCODE(made.checkup)),
    ]
    for kind, natural_key, revision, plaintext in records:
        session.add(
            Record(
                resident_id=resident, kind=kind, natural_key=natural_key, day=DAY,
                revision=revision, source_client="source",
                sealed=sealed(kind, natural_key, plaintext),
            )
        )  # fmt: skip
    session.add(
        Link(
            resident_id=resident, id=made.link_id, kind=LinkKind.TRANSIT_CARD.value,
            blind_index=os.urandom(32),
            sealed=sealed("link", str(made.link_id), b'{"label":"**** %04d"}' % number),
        )
    )  # fmt: skip
    made.archive = b"PK a ZIP of resident %d" % number
    now = datetime.now(UTC)
    session.add(
        Export(
            resident_id=resident, id=made.export_id, status="ready",
            sealed_zip=sealed("export", str(made.export_id), made.archive),
            size_bytes=len(made.archive), ready_at=now, expires_at=now + timedelta(days=1),
        )
    )  # fmt: skip
    await session.flush()
    return made


async def _sealed_values(engine: AsyncEngine) -> dict[str, list[bytes]]:
    async with engine.connect() as connection:
        return {
            table: list(
                await connection.scalars(
                    text(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")
                )
            )
            for table, column in _SEALED_COLUMNS.items()
        }


async def _no_build(session: AsyncSession, resident: uuid.UUID, export: uuid.UUID) -> None:
    raise AssertionError("nothing here asks for an export")


async def _download(session: AsyncSession, keystore: KeyStore, made: Deposited) -> bytes:
    """The resident's export as its download opens it."""
    exports = Exports(
        session, keystore, enqueue_build=_no_build, per_day=1, zone=ZoneInfo("Asia/Tokyo")
    )
    _, archive = await exports.download(made.resident, made.export_id)
    return archive


async def _read_back(
    session: AsyncSession, keystore: KeyStore, made: Deposited
) -> tuple[list[Any], ...]:
    """Everything of the resident through the normal read paths."""
    reader = VaultReader(session, keystore)
    steps = await reader.everything(STEPS, made.resident, *ALL_DAYS)
    taps = await reader.everything(TAPS, made.resident, *ALL_DAYS)
    checkups = await reader.everything(CHECKUPS, made.resident, *ALL_DAYS)
    links = await Links(session, keystore).list(made.resident)
    archive = await _download(session, keystore, made)
    return steps, taps, checkups, links, [archive]


async def _revisions_open(session: AsyncSession, keystore: KeyStore, made: Deposited) -> None:
    """Each kept revision opens at its own revision (nothing reads them back yet but points
    corrections will)."""
    opening = await keystore.for_opening(session, made.resident)
    rows = await session.execute(
        select(StepDayRevision.revision, StepDayRevision.sealed).where(
            StepDayRevision.resident_id == made.resident
        )
    )
    binding = Binding(made.resident, STEPS.code, STEPS.schema_version)
    natural_key = STEPS.natural_key(REVISED_DAY, "healthkit")
    opened = {
        revision: msgspec.json.decode(
            open_sealed(opening, binding, natural_key, revision, sealed), type=StepPayload
        )
        for revision, sealed in rows
    }
    assert opened == made.revisions


# --- the tests ----------------------------------------------------------------------------------


async def test_every_format_one_value_is_resealed_and_reads_the_same(
    vault: AsyncEngine, keystore: KeyStore
) -> None:
    async with AsyncSession(vault) as session, session.begin():
        deposited = [await _deposit_format_one(session, keystore, n) for n in range(2)]
        # A resident who pushed after the upgrade: format 2 already, nothing to do.
        newer = await _new_resident(session)
        key = await keystore.for_sealing(session, newer, 1)
        binding = Binding(newer, STEPS.code, STEPS.schema_version)
        natural_key = STEPS.natural_key(DAY, "healthkit")
        session.add(
            StepDay(
                resident_id=newer, day=DAY, source="healthkit", revision=2,
                sealed=seal(key, binding, natural_key, 2, _ENCODE(_steps(5))),
            )
        )  # fmt: skip
    before = await _sealed_values(vault)
    newer_value = next(value for value in before["step_days"] if value[0] == 2)

    async with AsyncSession(vault) as session:
        reader = VaultReader(session, keystore)
        for made in deposited:
            # The revision-3 step day and the revision-2 checkup do not open as format 1 (they
            # are left out as unreadable) ...
            days = await reader.everything(STEPS, made.resident, *ALL_DAYS)
            assert [(u.day, u.revision) for u in days.unreadable] == [(REVISED_DAY, 3)]
            exams = await reader.everything(CHECKUPS, made.resident, *ALL_DAYS)
            assert [u.revision for u in exams.unreadable] == [2]
            # ... the revision-1 rows do.
            [day] = await reader.page(STEPS, made.resident, DAY, DAY)
            assert not isinstance(day, Unreadable)
            assert day.payload == made.step_days[DAY]
            [tap] = await reader.everything(TAPS, made.resident, *ALL_DAYS)
            assert tap.payload == made.tap
            [link] = await Links(session, keystore).list(made.resident)
            assert link.id == made.link_id

    summary = _summary(await _run_command("--batch-size", "1"))

    assert summary == {
        "resealed": _counts(step_days=4, step_day_revisions=4, records=4, links=2, exports=2),
        "did_not_open": _counts(),
        "residents": 2,
    }
    after = await _sealed_values(vault)
    for table in TABLES:
        assert {value[0] for value in after[table]} == {2}, table
        assert not set(after[table]) & (set(before[table]) - {newer_value}), table
    assert newer_value in after["step_days"]  # untouched
    async with AsyncSession(vault) as session:
        for made in deposited:
            steps, taps, checkups, links, exports = await _read_back(session, keystore, made)
            assert {(day.day, day.revision): day.payload for day in steps} == {
                (DAY, 1): made.step_days[DAY], (REVISED_DAY, 3): made.step_days[REVISED_DAY],
            }  # fmt: skip
            assert [(tap.revision, tap.payload) for tap in taps] == [(1, made.tap)]
            assert [(exam.revision, exam.payload) for exam in checkups] == [(2, made.checkup)]
            assert [(link.id, link.masked) for link in links] == [
                (made.link_id, f"**** {deposited.index(made):04d}")
            ]
            assert exports == [made.archive]
            await _revisions_open(session, keystore, made)

    again = _summary(await _run_command())
    assert again == {"resealed": _counts(), "did_not_open": _counts(), "residents": 0}
    assert await _sealed_values(vault) == after


async def test_a_value_that_does_not_open_is_counted_and_left_as_it_is(
    vault: AsyncEngine, keystore: KeyStore
) -> None:
    async with AsyncSession(vault) as session, session.begin():
        made = await _deposit_format_one(session, keystore, 7)
        link = await session.get(Link, (made.resident, made.link_id))
        assert link is not None
        tampered = bytearray(link.sealed)
        tampered[-1] ^= 1
        link.sealed = bytes(tampered)

    first = _summary(await _run_command())

    assert first == {
        "resealed": _counts(step_days=2, step_day_revisions=2, records=2, exports=1),
        "did_not_open": _counts(links=1),
        "residents": 1,
    }
    async with AsyncSession(vault) as session:
        stored = await session.scalar(select(Link.sealed).where(Link.id == made.link_id))
        assert stored == bytes(tampered)  # neither resealed nor deleted
        reader = VaultReader(session, keystore)  # the links' list would fail on the tampered one
        steps = await reader.everything(STEPS, made.resident, *ALL_DAYS)
        taps = await reader.everything(TAPS, made.resident, *ALL_DAYS)
        checkups = await reader.everything(CHECKUPS, made.resident, *ALL_DAYS)
        archive = await _download(session, keystore, made)
        assert [(day.revision, day.payload) for day in steps] == [
            (1, made.step_days[DAY]), (3, made.step_days[REVISED_DAY]),
        ]  # fmt: skip
        assert [tap.payload for tap in taps] == [made.tap]
        assert [exam.payload for exam in checkups] == [made.checkup]
        assert archive == made.archive
    second = _summary(await _run_command())
    assert second == {
        "resealed": _counts(), "did_not_open": _counts(links=1), "residents": 0,
    }  # fmt: skip


_EXAMPLES = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_EXAMPLES
@given(
    revisions=st.lists(st.integers(1, 2**31 - 1), min_size=1, max_size=6, unique=True),
    steps=st.integers(0, 100_000),
    batch_size=st.integers(1, 3),
)
async def test_a_step_day_at_any_revision_opens_there_after_the_reseal_and_nowhere_else(
    vault: AsyncEngine, keystore: KeyStore, revisions: list[int], steps: int, batch_size: int
) -> None:
    async with vault.begin() as connection:
        await connection.execute(text("TRUNCATE keystore.data_keys, accounts CASCADE"))
    residents: dict[uuid.UUID, int] = {}
    async with AsyncSession(vault) as session, session.begin():
        for revision in revisions:
            resident = await _new_resident(session)
            key = await keystore.for_sealing(session, resident, 1)
            natural_key = STEPS.natural_key(DAY, "healthkit")
            value = _format_one(key, resident, "steps", natural_key, _ENCODE(_steps(steps)))
            session.add(
                StepDay(
                    resident_id=resident, day=DAY, source="healthkit", revision=revision,
                    sealed=value,
                )
            )  # fmt: skip
            residents[resident] = revision

    database = Database(sessions=make_session_factory(vault))
    summary = await reseal(database, keystore, batch_size=batch_size)

    assert summary.resealed["step_days"] == len(revisions)
    assert summary.residents == len(revisions)
    async with AsyncSession(vault) as session:
        for resident, revision in residents.items():
            [day] = await VaultReader(session, keystore).everything(STEPS, resident, *ALL_DAYS)
            assert (day.revision, day.payload) == (revision, _steps(steps))
            sealed = await session.scalar(
                select(StepDay.sealed).where(StepDay.resident_id == resident)
            )
            assert sealed is not None
            opening = await keystore.for_opening(session, resident)
            binding = Binding(resident, STEPS.code, STEPS.schema_version)
            natural_key = STEPS.natural_key(DAY, "healthkit")
            with pytest.raises(RecordDoesNotOpen):  # copied into a later revision: does not open
                open_sealed(opening, binding, natural_key, revision + 1, sealed)
    assert sum((await reseal(database, keystore)).resealed.values()) == 0


async def _waiting_for_a_lock(engine: AsyncEngine) -> None:
    """Until a transaction of this database waits for a lock (the reseal's: the test has the
    database to itself)."""
    for _ in range(3000):
        async with engine.connect() as connection:
            waiting = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the reseal never waited for the resident's lock")


@pytest.mark.parametrize("topic", ["steps", "records:transit_tap", "records:checkup"])
async def test_the_reseal_waits_for_a_push_holding_the_resident_and_sees_what_it_wrote(
    vault: AsyncEngine, keystore: KeyStore, topic: str
) -> None:
    """A push of steps copies the value it replaces into a revision row: a reseal that read the
    day before the push and wrote after it would leave that copy in format 1. Holding every
    writer's lock, the reseal reads after the push instead."""
    async with AsyncSession(vault) as session, session.begin():
        made = await _deposit_format_one(session, keystore, 3)
    database = Database(sessions=make_session_factory(vault))
    natural_key = STEPS.natural_key(DAY, "healthkit")
    async with AsyncSession(vault) as push, push.begin():
        await lock_resident(push, topic, made.resident)
        running = asyncio.create_task(reseal(database, keystore))
        await _waiting_for_a_lock(vault)
        assert not running.done()
        # What a push of DAY does under the "steps" lock: the old value kept as revision 1,
        # the new one sealed at revision 2.
        day = await push.get(StepDay, (made.resident, DAY, "healthkit"))
        assert day is not None
        push.add(
            StepDayRevision(
                resident_id=made.resident, day=DAY, source="healthkit", revision=1,
                sealed=day.sealed,
            )
        )  # fmt: skip
        key = await keystore.for_sealing(push, made.resident, 1)
        binding = Binding(made.resident, STEPS.code, STEPS.schema_version)
        day.sealed = seal(key, binding, natural_key, 2, _ENCODE(_steps(9)))
        day.revision = 2
    summary = await running

    assert summary.resealed == _counts(
        step_days=1, step_day_revisions=3, records=2, links=1, exports=1
    )
    after = await _sealed_values(vault)
    assert all(value[0] == 2 for values in after.values() for value in values)
    async with AsyncSession(vault) as session:
        opening = await keystore.for_opening(session, made.resident)
        kept = await session.scalar(
            select(StepDayRevision.sealed).where(
                StepDayRevision.resident_id == made.resident, StepDayRevision.day == DAY
            )
        )
        assert kept is not None
        plaintext = open_sealed(opening, binding, natural_key, 1, kept)
        assert msgspec.json.decode(plaintext, type=StepPayload) == made.step_days[DAY]


async def test_a_value_changed_after_it_was_read_is_not_overwritten(
    vault: AsyncEngine, keystore: KeyStore
) -> None:
    async with AsyncSession(vault) as session, session.begin():
        made = await _deposit_format_one(session, keystore, 4)
    async with AsyncSession(vault) as session, session.begin():
        rows = ResealRows(session)
        unbound = [row for row in await rows.of([made.resident]) if row.table == "links"]
        await session.execute(
            update(Link).where(Link.id == made.link_id).values(sealed=b"\x02 written meanwhile")
        )
        assert await rows.replace(SealedTable.LINKS, [(unbound[0], b"\x02 the reseal's")]) == []
        stored = await session.scalar(select(Link.sealed).where(Link.id == made.link_id))
        assert stored == b"\x02 written meanwhile"
        await session.rollback()
