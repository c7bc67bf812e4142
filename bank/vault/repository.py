"""The vault's reads of sealed rows: every statement built once, parameters bound per call.

Rows come back still sealed; bank.vault.reader opens them. A row is (resident, day, row key,
sealed, revision) whatever its table: the row key is a step day's source or a record's natural
key, and (day, row key) orders a resident's rows and pages them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    LargeBinary,
    Select,
    Text,
    Update,
    any_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    tuple_,
    union,
    update,
)
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import Uuid

from bank.crypto.keystore import DataKey
from bank.crypto.sealing import FORMAT_UNBOUND_REVISION
from bank.db import locks as db_locks
from bank.db.bulk import Unnest
from bank.db.driver import DriverQuery
from bank.db.locks import resident_lock_statement
from bank.identity.models import Account
from bank.vault.kinds import RecordKind, Table
from bank.vault.models import ErasureReceipt, Export, Link, Record, StepDay, StepDayRevision

# Before every row: no row has an empty key, and no day precedes this one.
FIRST = (date.min, "")


@dataclass(frozen=True, slots=True)
class SealedRows:
    """One resident's sealed rows of a kind, column by column, in (day, row key) order."""

    resident_id: uuid.UUID
    days: Sequence[date]
    row_keys: Sequence[str]
    sealed: Sequence[bytes]
    revisions: Sequence[int]

    def __len__(self) -> int:
        return len(self.days)

    def last(self) -> tuple[date, str]:
        """(day, row key) of the last row: where the next page starts."""
        return self.days[-1], self.row_keys[-1]


def _columns(table: Table) -> tuple[Any, ...]:
    """(resident, day, row key, sealed, revision) of the table, and the kind filter if any."""
    if table is Table.STEP_DAYS:
        return StepDay.resident_id, StepDay.day, StepDay.source, StepDay.sealed, StepDay.revision
    return Record.resident_id, Record.day, Record.natural_key, Record.sealed, Record.revision


def _of_kind(table: Table, query: Select[Any]) -> Select[Any]:
    return query.where(Record.kind == bindparam("kind")) if table is Table.RECORDS else query


def _page(table: Table) -> Select[Any]:
    resident, day, key, sealed, revision = _columns(table)
    query = (
        select(day, key, sealed, revision)
        .where(
            resident == bindparam("resident", type_=Uuid()),
            day >= bindparam("start", type_=Date()),
            day <= bindparam("end", type_=Date()),
            tuple_(day, key)
            > tuple_(bindparam("after_day", type_=Date()), bindparam("after_key", type_=Text())),
        )
        .order_by(day, key)
        .limit(bindparam("limit"))
    )
    return _of_kind(table, query)


def _latest(table: Table) -> Select[Any]:
    resident, day, key, sealed, revision = _columns(table)
    query = (
        select(day, key, sealed, revision)
        .where(resident == bindparam("resident", type_=Uuid()))
        .order_by(day.desc(), key.desc())
        .limit(1)
    )
    return _of_kind(table, query)


def _of_residents(table: Table) -> Select[Any]:
    # One row per resident, each column an array in (day, row key) order: a batch's rows cost a
    # Python object per resident, not one (and a collector's walk) per record.
    resident, day, key, sealed, revision = _columns(table)
    query = (
        select(
            resident,
            *(
                func.array_agg(aggregate_order_by(column, day, key))
                for column in (day, key, sealed, revision)
            ),
        )
        .where(
            resident == any_(cast(bindparam("residents"), ARRAY(Uuid()))),
            day >= bindparam("start", type_=Date()),
            day <= bindparam("end", type_=Date()),
        )
        .group_by(resident)
    )
    return _of_kind(table, query)


# A resident's reads are the read path's hot statements: run on the driver (bank.db.driver).
_PAGE = {table: DriverQuery(_page(table)) for table in Table}
_LATEST = {table: DriverQuery(_latest(table)) for table in Table}
_OF_RESIDENTS = {table: _of_residents(table) for table in Table}
_RESIDENTS_AFTER = (
    select(Account.id)
    .where(Account.kind == "resident", Account.id > bindparam("after", type_=Uuid()))
    .order_by(Account.id)
    .limit(bindparam("limit"))
)


def _columns_of(resident_id: uuid.UUID, rows: Sequence[Any]) -> SealedRows:
    days, keys, sealed, revisions = zip(*rows, strict=True) if rows else ((), (), (), ())
    return SealedRows(resident_id, days, keys, sealed, revisions)


class RecordRows:
    """Sealed rows of one session's view of the database."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def page(
        self,
        kind: RecordKind[Any],
        resident_id: uuid.UUID,
        start: date,
        end: date,
        *,
        after: tuple[date, str] = FIRST,
        limit: int,
    ) -> SealedRows:
        """The resident's rows of the kind in [start, end] after `after`, at most `limit`."""
        parameters = {
            "resident": resident_id, "start": start, "end": end, "after_day": after[0],
            "after_key": after[1], "limit": limit, "kind": kind.code,
        }  # fmt: skip
        return _columns_of(resident_id, await _PAGE[kind.table].fetch(self._session, parameters))

    async def latest(self, kind: RecordKind[Any], resident_id: uuid.UUID) -> SealedRows:
        """The resident's row of the kind with the latest (day, row key), if any."""
        parameters = {"resident": resident_id, "kind": kind.code}
        rows = await _LATEST[kind.table].fetch(self._session, parameters)
        return _columns_of(resident_id, rows)

    async def of_residents(
        self, kind: RecordKind[Any], residents: Sequence[uuid.UUID], start: date, end: date
    ) -> dict[uuid.UUID, SealedRows]:
        """The rows of the kind in [start, end] of each of these residents who has any."""
        parameters = {"residents": list(residents), "start": start, "end": end, "kind": kind.code}
        result = await self._session.execute(_OF_RESIDENTS[kind.table], parameters)
        return {row[0]: SealedRows(*row) for row in result.all()}

    async def residents_after(self, after: uuid.UUID, limit: int) -> list[uuid.UUID]:
        """Up to `limit` residents' ids after `after`, in id order (a batch job's keyset)."""
        result = await self._session.scalars(_RESIDENTS_AFTER, {"after": after, "limit": limit})
        return list(result)


# --- exports ---------------------------------------------------------------------------------

EXPORTS_QUEUE = "exports"  # the build job's queue (bank.vault.jobs)
# procrastinate's jobs table, into which bank.jobs.enqueue puts the build in the request's own
# transaction: the columns the "being built" check reads.
_JOBS = sql_table(
    "procrastinate_jobs",
    sql_column("queue_name", Text()),
    sql_column("status", Text()),
    sql_column("args", JSONB()),
)
# A build waiting (or waiting to retry) or running. Literals, so that they compare with
# procrastinate's enum as it is and its partial index over these two statuses serves the check.
_UNFINISHED: tuple[ColumnElement[str], ...] = (
    literal_column("'todo'"),
    literal_column("'doing'"),
)
_IN_BUILD = exists().where(
    _JOBS.c.queue_name == EXPORTS_QUEUE,
    _JOBS.c.status.in_(_UNFINISHED),
    _JOBS.c.args["export_id"].astext == cast(Export.id, Text()),
)
_BUILDING = (
    select(Export)
    .where(Export.resident_id == bindparam("resident"), Export.status == "pending", _IN_BUILD)
    .order_by(Export.requested_at.desc())
    .limit(1)
)
# The clear columns of a resident's unexpired exports (never the sealed ZIP), and whether a
# build job is still at work on each, newest first.
_SUMMARIES = (
    select(
        Export.id, Export.status, Export.requested_at, Export.ready_at, Export.expires_at,
        Export.size_bytes, _IN_BUILD.label("building"),
    )
    .where(Export.resident_id == bindparam("resident"), Export.expires_at > bindparam("now"))
    .order_by(Export.requested_at.desc())
)  # fmt: skip
_REQUESTED_SINCE = select(func.count()).where(
    Export.resident_id == bindparam("resident"), Export.requested_at >= bindparam("since")
)


@dataclass(frozen=True)
class ExportState:
    """An export's clear columns, and whether a build job is still at work on it."""

    id: uuid.UUID
    stored_status: str  # pending | ready
    requested_at: datetime
    ready_at: datetime | None
    expires_at: datetime
    size_bytes: int | None
    building: bool


class ExportRows:
    """The resident's export rows (sealed ZIPs) and the account an export belongs to."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock(self, resident_id: uuid.UUID) -> bool:
        """Serialise the resident's export requests until this transaction ends, so the next
        one's `building` and `requested_since` see this one's export; False if the account is
        gone."""
        lock = await db_locks.lock_resident(self._session, "exports", resident_id)
        return lock.account_exists

    async def building(self, resident_id: uuid.UUID) -> Export | None:
        """The resident's newest export still pending whose build job is queued or running: a
        pending export whose job failed for good is not being built."""
        return await self._session.scalar(_BUILDING, {"resident": resident_id})

    async def summaries(
        self,
        resident_id: uuid.UUID,
        now: datetime,
        *,
        export_id: uuid.UUID | None = None,
        limit: int = 10,
    ) -> list[ExportState]:
        """The resident's unexpired exports (just `export_id` if given), newest first."""
        statement = _SUMMARIES.limit(limit)
        if export_id is not None:
            statement = statement.where(Export.id == export_id)
        rows = await self._session.execute(statement, {"resident": resident_id, "now": now})
        return [ExportState(*row) for row in rows]

    async def requested_since(self, resident_id: uuid.UUID, since: datetime) -> int:
        """How many exports the resident asked for at or after `since`. Every one of the last
        day is still here: the purge takes only exports past their expiry, a day or more after
        they were asked for."""
        count = await self._session.scalar(
            _REQUESTED_SINCE, {"resident": resident_id, "since": since}
        )
        return int(count or 0)

    async def add(self, export: Export) -> Export:
        self._session.add(export)
        await self._session.flush()
        return export

    async def unexpired(
        self, resident_id: uuid.UUID, export_id: uuid.UUID, now: datetime
    ) -> Export | None:
        return await self._session.scalar(
            select(Export).where(
                Export.resident_id == resident_id, Export.id == export_id, Export.expires_at > now
            )
        )

    async def pending_for_update(
        self, resident_id: uuid.UUID, export_id: uuid.UUID
    ) -> Export | None:
        """The export if it is still pending, locked until the transaction ends (one build)."""
        export = await self._session.get(Export, (resident_id, export_id), with_for_update=True)
        return export if export is not None and export.status == "pending" else None

    async def account(self, resident_id: uuid.UUID) -> Account | None:
        return await self._session.get(Account, resident_id)

    async def account_exists(self, resident_id: uuid.UUID) -> bool:
        return await self.account(resident_id) is not None

    async def purge_expired(self, now: datetime) -> int:
        """Delete exports past their expiry, downloaded or not; how many went."""
        result = await self._session.execute(delete(Export).where(Export.expires_at < now))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- erasure ---------------------------------------------------------------------------------

# Every vault table holding a resident's rows, counted for the erasure receipt (the account's
# cascade would delete them too, but the receipt says how many went).
_RESIDENT_TABLES = (StepDay, StepDayRevision, Record, Link, Export)


class ErasureRows:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def delete_resident_rows(self, resident_id: uuid.UUID) -> dict[str, int]:
        """Delete the resident's rows of every vault table; how many per table."""
        counts = {}
        for table in _RESIDENT_TABLES:
            result = await self._session.execute(
                delete(table).where(table.resident_id == resident_id)
            )
            counts[table.__tablename__] = int(result.rowcount or 0)  # type: ignore[attr-defined]
        return counts

    async def add_receipt(self, receipt: ErasureReceipt, account: Account | None) -> ErasureReceipt:
        """Keep the receipt (unless one with its id is stored: a reapplied erasure whose restored
        database has it) and delete the account (its cascade reaches sessions and tokens)."""
        if await self._session.get(ErasureReceipt, receipt.id) is None:
            self._session.add(receipt)
        if account is not None:
            await self._session.delete(account)
        await self._session.flush()
        return receipt


# --- links -----------------------------------------------------------------------------------


class LinkRows:
    """Residents' links: found by (kind, blind index), shown through their sealed masked form."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self, resident_id: uuid.UUID, link_id: uuid.UUID, kind: str, index: bytes, sealed: bytes
    ) -> datetime | None:
        """The new link's creation time; None if the (kind, blind index) is linked already."""
        statement = (
            pg_insert(Link)
            .values(
                resident_id=resident_id, id=link_id, kind=kind, blind_index=index, sealed=sealed
            )
            .on_conflict_do_nothing(index_elements=["kind", "blind_index"])
            .returning(Link.created_at)
        )
        created_at: datetime | None = await self._session.scalar(statement)
        return created_at

    async def owner(self, kind: str, index: bytes) -> uuid.UUID | None:
        return await self._session.scalar(
            select(Link.resident_id).where(Link.kind == kind, Link.blind_index == index)
        )

    async def of(self, resident_id: uuid.UUID, kind: str | None) -> list[Link]:
        """The resident's links (of one kind, or all), oldest first."""
        query = select(Link).where(Link.resident_id == resident_id).order_by(Link.created_at)
        if kind is not None:
            query = query.where(Link.kind == kind)
        return list(await self._session.scalars(query))

    async def remove(self, resident_id: uuid.UUID, link_id: uuid.UUID) -> bool:
        result = await self._session.execute(
            delete(Link).where(Link.resident_id == resident_id, Link.id == link_id)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def owners(self, kind: str, indexes: Sequence[bytes]) -> dict[bytes, uuid.UUID]:
        """The resident of each blind index that is linked at all."""
        rows = await self._session.execute(
            select(Link.blind_index, Link.resident_id).where(
                Link.kind == kind, Link.blind_index.in_(list(indexes))
            )
        )
        return {row.blind_index: row.resident_id for row in rows}


# --- pushes: the resident lock, step days, pushed records ----------------------------------------

# The kernel's resident lock, reading in the same round trip whether the resident has a data key
# (when the key store shares the database; with one of its own, the lock alone).
_LOCK_RESIDENT = resident_lock_statement(
    select(DataKey.version).where(DataKey.resident_id == bindparam("resident")).exists(),
)
_LOCK_RESIDENT_ONLY = resident_lock_statement()


@dataclass(frozen=True)
class ResidentLock:
    account_exists: bool
    # Whether the resident had a data key when the lock was taken: a first push then creates
    # one straight away instead of first trying to reserve seals on none (KeyStore.for_sealing).
    # True when not known (the key store in a database of its own): either order is correct.
    has_data_key: bool


async def lock_resident(
    session: AsyncSession, topic: str, resident_id: uuid.UUID, *, keys_beside: bool = True
) -> ResidentLock:
    """The kernel's resident lock (bank.db.locks) for `topic`, and whether the resident has a
    data key yet, in one round trip; `keys_beside=False` (the key store is in a database of
    its own, `KeystoreDatabase.separate`) takes the lock alone."""
    if not keys_beside:
        lock = await db_locks.lock_resident(session, topic, resident_id, _LOCK_RESIDENT_ONLY)
        return ResidentLock(account_exists=lock.account_exists, has_data_key=True)
    lock = await db_locks.lock_resident(session, topic, resident_id, _LOCK_RESIDENT)
    return ResidentLock(account_exists=lock.account_exists, has_data_key=bool(lock.also[0]))


# The statements of a push, built once (bank.db.bulk): parameters `resident` and the arrays.
_STEP_WANTED = Unnest("wanted", day=Date(), source=Text())
_STEP_EXISTING = (
    select(StepDay.day, StepDay.source, StepDay.sealed, StepDay.revision)
    .join(
        _STEP_WANTED.table,
        (StepDay.day == _STEP_WANTED.c.day) & (StepDay.source == _STEP_WANTED.c.source),
    )
    .where(StepDay.resident_id == bindparam("resident"))
)
_STEP_NEW_ROWS = Unnest("rows", day=Date(), source=Text(), sealed=LargeBinary())
# "raw": run as written with the arrays as parameters (a dict of parameters would make
# the ORM take it for a bulk insert of one row).
_STEP_INSERT = insert(StepDay).from_select(
    ["resident_id", "day", "source", "sealed", "revision"],
    select(
        bindparam("resident", type_=Uuid()), _STEP_NEW_ROWS.c.day, _STEP_NEW_ROWS.c.source,
        _STEP_NEW_ROWS.c.sealed, literal(1),
    ),
).execution_options(dml_strategy="raw")  # fmt: skip
_STEP_CHANGED_ROWS = Unnest(
    "rows", day=Date(), source=Text(), sealed=LargeBinary(), revision=Integer()
)
_STEP_UPDATE = (
    update(StepDay)
    .where(
        StepDay.resident_id == bindparam("resident"),
        StepDay.day == _STEP_CHANGED_ROWS.c.day,
        StepDay.source == _STEP_CHANGED_ROWS.c.source,
    )
    .values(
        sealed=_STEP_CHANGED_ROWS.c.sealed,
        revision=_STEP_CHANGED_ROWS.c.revision,
        updated_at=func.now(),
    )
    .execution_options(synchronize_session=False)
)


class StepDayRows:
    """One resident's step days as a push writes them (statements built once: bank.db.bulk)."""

    def __init__(self, session: AsyncSession, resident_id: uuid.UUID) -> None:
        self._session = session
        self._resident = {"resident": resident_id}

    async def existing(self, days: Sequence[date], sources: Sequence[str]) -> list[Any]:
        """The stored (day, source, sealed, revision) of these (day, source) pairs."""
        wanted = _STEP_WANTED.params(day=list(days), source=list(sources))
        return list(
            (await self._session.execute(_STEP_EXISTING, {**self._resident, **wanted})).all()
        )

    async def insert(
        self, *, days: Sequence[date], sources: Sequence[str], sealed: Sequence[bytes]
    ) -> None:
        rows = _STEP_NEW_ROWS.params(day=list(days), source=list(sources), sealed=list(sealed))
        await self._session.execute(_STEP_INSERT, {**self._resident, **rows})

    async def keep_revisions(self, revisions: Sequence[dict[str, object]]) -> None:
        """Keep replaced values (their sealed bytes, revision and key) in step_day_revisions."""
        await self._session.execute(pg_insert(StepDayRevision), list(revisions))

    async def update(
        self,
        *,
        days: Sequence[date],
        sources: Sequence[str],
        sealed: Sequence[bytes],
        revisions: Sequence[int],
    ) -> None:
        rows = _STEP_CHANGED_ROWS.params(
            day=list(days), source=list(sources), sealed=list(sealed), revision=list(revisions)
        )
        await self._session.execute(_STEP_UPDATE, {**self._resident, **rows})


# The statements of a push, built once (bank.db.bulk): parameters `resident`, `record_kind`,
# `pushed_by` (the source client) and the arrays.
_RECORD_EXISTING = select(Record.natural_key, Record.sealed, Record.revision).where(
    Record.resident_id == bindparam("resident"),
    Record.kind == bindparam("record_kind"),
    Record.natural_key == any_(cast(bindparam("natural_keys"), ARRAY(Text))),
)
_RECORD_NEW_ROWS = Unnest("rows", natural_key=Text(), day=Date(), sealed=LargeBinary())
# "raw": run as written with the arrays as parameters (a dict of parameters would make
# the ORM take it for a bulk insert of one row).
_RECORD_INSERT = insert(Record).from_select(
    ["resident_id", "kind", "natural_key", "day", "sealed", "revision", "source_client"],
    select(
        bindparam("resident", type_=Uuid()), bindparam("record_kind", type_=Text()),
        _RECORD_NEW_ROWS.c.natural_key, _RECORD_NEW_ROWS.c.day, _RECORD_NEW_ROWS.c.sealed,
        literal(1), bindparam("pushed_by", type_=Text()),
    ),
).execution_options(dml_strategy="raw")  # fmt: skip
_RECORD_CHANGED_ROWS = Unnest(
    "rows", natural_key=Text(), day=Date(), sealed=LargeBinary(), revision=Integer()
)
_RECORD_UPDATE = (
    update(Record)
    .where(
        Record.resident_id == bindparam("resident"),
        Record.kind == bindparam("record_kind"),
        Record.natural_key == _RECORD_CHANGED_ROWS.c.natural_key,
    )
    .values(
        day=_RECORD_CHANGED_ROWS.c.day, sealed=_RECORD_CHANGED_ROWS.c.sealed,
        revision=_RECORD_CHANGED_ROWS.c.revision, source_client=bindparam("pushed_by"),
        updated_at=func.now(),
    )
    .execution_options(synchronize_session=False)
)  # fmt: skip


class PushedRecordRows:
    """One resident's records of one kind as a source's push writes them."""

    def __init__(
        self, session: AsyncSession, resident_id: uuid.UUID, kind: str, *, pushed_by: str
    ) -> None:
        self._session = session
        self._where = {"resident": resident_id, "record_kind": kind, "pushed_by": pushed_by}

    async def existing(self, natural_keys: Sequence[str]) -> dict[str, Any]:
        """The stored (natural_key, sealed, revision) of these natural keys, by natural key."""
        parameters = {**self._where, "natural_keys": list(natural_keys)}
        return {
            row.natural_key: row
            for row in await self._session.execute(_RECORD_EXISTING, parameters)
        }

    async def insert(
        self, *, natural_keys: Sequence[str], days: Sequence[date], sealed: Sequence[bytes]
    ) -> None:
        rows = _RECORD_NEW_ROWS.params(
            natural_key=list(natural_keys), day=list(days), sealed=list(sealed)
        )
        await self._session.execute(_RECORD_INSERT, {**self._where, **rows})

    async def update(
        self,
        *,
        natural_keys: Sequence[str],
        days: Sequence[date],
        sealed: Sequence[bytes],
        revisions: Sequence[int],
    ) -> None:
        rows = _RECORD_CHANGED_ROWS.params(
            natural_key=list(natural_keys), day=list(days), sealed=list(sealed),
            revision=list(revisions),
        )  # fmt: skip
        await self._session.execute(_RECORD_UPDATE, {**self._where, **rows})


# --- Reseal: the format-1 values `bank vault reseal` seals again (bank.vault.reseal) -------------


class SealedTable(StrEnum):
    """Every table that holds sealed values, as the reseal names them in its summary."""

    STEP_DAYS = "step_days"
    STEP_DAY_REVISIONS = "step_day_revisions"
    RECORDS = "records"
    LINKS = "links"
    EXPORTS = "exports"


@dataclass(frozen=True)
class _SealedColumns:
    table: Any
    key: tuple[Any, ...]  # the primary key, the resident first
    sealed: Any
    revision: Any | None  # None: the table keeps no revision (its values are never replaced)


_SEALED_COLUMNS = {
    SealedTable.STEP_DAYS: _SealedColumns(
        StepDay, (StepDay.resident_id, StepDay.day, StepDay.source), StepDay.sealed,
        StepDay.revision,
    ),
    SealedTable.STEP_DAY_REVISIONS: _SealedColumns(
        StepDayRevision,
        (StepDayRevision.resident_id, StepDayRevision.day, StepDayRevision.source,
         StepDayRevision.revision),
        StepDayRevision.sealed, StepDayRevision.revision,
    ),
    SealedTable.RECORDS: _SealedColumns(
        Record, (Record.resident_id, Record.kind, Record.natural_key), Record.sealed,
        Record.revision,
    ),
    SealedTable.LINKS: _SealedColumns(Link, (Link.resident_id, Link.id), Link.sealed, None),
    SealedTable.EXPORTS: _SealedColumns(
        Export, (Export.resident_id, Export.id), Export.sealed_zip, None
    ),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class UnboundRow:
    """A format-1 value and the primary key of its row."""

    table: SealedTable
    key: tuple[Any, ...]  # the table's primary key, the resident first
    revision: int | None  # the row's revision; None where the table keeps none
    sealed: bytes

    @property
    def resident_id(self) -> uuid.UUID:
        resident: uuid.UUID = self.key[0]
        return resident


def _unbound(sealed: Any) -> Any:
    # The format byte only: the server looks at one byte of each value and sends back only the
    # values still to be resealed (NULL, an export not built yet, is not one).
    return func.get_byte(sealed, 0) == FORMAT_UNBOUND_REVISION


def _unbound_residents() -> Select[Any]:
    # Each table's first `limit` residents in key order (its primary key's leading column, so
    # an index scan can stop early), then the first `limit` of their union.
    firsts = [
        select(columns.key[0].label("resident_id"))
        .where(columns.key[0] > bindparam("after", type_=Uuid()), _unbound(columns.sealed))
        .distinct()
        .order_by(columns.key[0])
        .limit(bindparam("limit"))
        .subquery()
        for columns in _SEALED_COLUMNS.values()
    ]
    residents = union(*(select(first.c.resident_id) for first in firsts)).subquery()
    return (
        select(residents.c.resident_id).order_by(residents.c.resident_id).limit(bindparam("limit"))
    )


def _unbound_rows(columns: _SealedColumns) -> Select[Any]:
    revision = columns.revision if columns.revision is not None else null()
    return select(*columns.key, revision, columns.sealed).where(
        columns.key[0] == any_(cast(bindparam("residents"), ARRAY(Uuid()))),
        _unbound(columns.sealed),
    )


def _replacements(columns: _SealedColumns) -> Unnest:
    key_types = {f"k{index}": column.type for index, column in enumerate(columns.key)}
    return Unnest("resealed", **key_types, old=LargeBinary(), new=LargeBinary())


def _reseal(columns: _SealedColumns, rows: Unnest) -> Update:
    """Each row's value replaced by its new one where the row still holds the old value: a row
    changed or deleted since it was read is left as it is (and not counted)."""
    keys = [column == rows.c[f"k{index}"] for index, column in enumerate(columns.key)]
    return (
        update(columns.table)
        .where(*keys, columns.sealed == rows.c.old)
        .values({columns.sealed: rows.c.new})
        .returning(columns.key[0])
        .execution_options(synchronize_session=False)
    )


_UNBOUND_RESIDENTS = _unbound_residents()
_UNBOUND_ROWS = {table: _unbound_rows(columns) for table, columns in _SEALED_COLUMNS.items()}
_REPLACEMENTS = {table: _replacements(columns) for table, columns in _SEALED_COLUMNS.items()}
_RESEAL = {
    table: _reseal(columns, _REPLACEMENTS[table]) for table, columns in _SEALED_COLUMNS.items()
}


class ResealRows:
    """The format-1 values of one session's view of the database, and their replacement."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def residents_after(self, after: uuid.UUID, limit: int) -> list[uuid.UUID]:
        """Up to `limit` residents after `after`, in id order, that hold a format-1 value."""
        result = await self._session.scalars(_UNBOUND_RESIDENTS, {"after": after, "limit": limit})
        return list(result)

    async def of(self, residents: Sequence[uuid.UUID]) -> list[UnboundRow]:
        """Every format-1 value of these residents, in every table."""
        found: list[UnboundRow] = []
        for table, statement in _UNBOUND_ROWS.items():
            width = len(_SEALED_COLUMNS[table].key)
            for row in await self._session.execute(statement, {"residents": list(residents)}):
                found.append(UnboundRow(table, tuple(row[:width]), row[width], row[width + 1]))
        return found

    async def replace(
        self, table: SealedTable, values: Sequence[tuple[UnboundRow, bytes]]
    ) -> list[uuid.UUID]:
        """Write each row's new value where the row still holds the old one; the resident of
        each row written."""
        if not values:
            return []
        rows = _REPLACEMENTS[table]
        width = len(_SEALED_COLUMNS[table].key)
        arrays = {f"k{index}": [row.key[index] for row, _ in values] for index in range(width)}
        parameters = rows.params(
            **arrays, old=[row.sealed for row, _ in values], new=[new for _, new in values]
        )
        return list(await self._session.scalars(_RESEAL[table], parameters))
