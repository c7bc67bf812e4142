"""The one read path of personal data: sealed rows in, typed opened records out.

Every reader of a resident's records goes through here: the resident API, exports, and next the
partner releases (one resident at a time, `VaultReader`) and the nightly points award and the
open-data publisher (every resident, `BatchReader`). Neither decides what may be released: they
open what they are asked for, and the consent service decides what is asked.

A batch reads residents a batch at a time in id order: one query per kind for their rows (a row
per resident, the records' columns as arrays), then one query for their keys and one provider
round to unwrap them. Each resident's keys are unwrapped once per run, and only one batch's rows
are held at a time (its records are opened a resident at a time, as the caller takes them), so
memory does not grow with the number of residents.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.keystore import KeyErased, KeyStore
from bank.crypto.sealing import Binding, OpeningKeys, RecordDoesNotOpen, open_sealed
from bank.vault.kinds import RecordKind
from bank.vault.repository import FIRST, RecordRows, SealedRows
from bank.vault.unreadable import (
    Records,
    Unreadable,
    note_unreadable,
    note_without_key,
    split,
)

R = TypeVar("R")

ALL_DAYS = (date(1900, 1, 1), date(9999, 12, 31))
_WHOLE_PAGE = 1000  # `everything` reads this many rows per query
_NO_RESIDENT = uuid.UUID(int=0)


def _opened(
    kind: RecordKind[R], keys: OpeningKeys, binding: Binding, rows: SealedRows
) -> tuple[list[R | Unreadable], list[Unreadable]]:
    """The rows opened in order, an `Unreadable` marker in place of each that does not open,
    and the markers alone (logged and counted here)."""
    natural_key, opened = kind.natural_key, kind.opened
    columns = zip(rows.days, rows.row_keys, rows.sealed, rows.revisions, strict=True)
    try:
        # Every row opens but in an attack or an accident: no per-row try on the hot path.
        return [
            opened(
                row_key,
                day,
                revision,
                open_sealed(keys, binding, natural_key(day, row_key), revision, sealed),
            )
            for day, row_key, sealed, revision in columns
        ], []
    except RecordDoesNotOpen:
        pass
    records: list[R | Unreadable] = []
    unreadable: list[Unreadable] = []
    for day, row_key, sealed, revision in zip(
        rows.days, rows.row_keys, rows.sealed, rows.revisions, strict=True
    ):
        try:
            plaintext = open_sealed(keys, binding, natural_key(day, row_key), revision, sealed)
        except RecordDoesNotOpen:
            marker = Unreadable(kind.code, day, row_key, revision)
            records.append(marker)
            unreadable.append(marker)
            continue
        records.append(opened(row_key, day, revision, plaintext))
    note_unreadable(kind.code, binding.owner, unreadable)
    return records, unreadable


class VaultReader:
    """One resident's records, through the session it is given."""

    def __init__(self, session: AsyncSession, keys: KeyStore) -> None:
        self._session = session
        self._rows = RecordRows(session)
        self._keys = keys

    async def page(
        self,
        kind: RecordKind[R],
        resident_id: uuid.UUID,
        start: date,
        end: date,
        *,
        after: tuple[date, str] | None = None,
        limit: int = 100,
    ) -> list[R | Unreadable]:
        """The resident's records of the kind in [start, end] after the cursor `after`
        ((day, row key) of the last record of the page before), by (day, row key); a record
        that does not open is an `Unreadable` in its place."""
        rows = await self._rows.page(
            kind, resident_id, start, end, after=after or FIRST, limit=limit
        )
        return await self._open(kind, resident_id, [rows])

    async def everything(
        self, kind: RecordKind[R], resident_id: uuid.UUID, start: date, end: date
    ) -> Records[R]:
        """All the resident's records of the kind in [start, end] (a month's rides, an export),
        read a thousand rows per query and the key unwrapped once: those that open, and in
        `.unreadable` those left out because they do not."""
        pages: list[SealedRows] = []
        after = FIRST
        while True:
            page = await self._rows.page(
                kind, resident_id, start, end, after=after, limit=_WHOLE_PAGE
            )
            pages.append(page)
            if len(page) < _WHOLE_PAGE:
                rows = await self._open(kind, resident_id, pages)
                return Records(*split(rows))
            after = page.last()

    async def latest(self, kind: RecordKind[R], resident_id: uuid.UUID) -> R | Unreadable | None:
        """The resident's record of the kind with the latest (day, row key), if any: an
        `Unreadable` if that one does not open (never an older one in its place)."""
        rows = await self._rows.latest(kind, resident_id)
        records = await self._open(kind, resident_id, [rows])
        return records[0] if records else None

    async def _open(
        self, kind: RecordKind[R], resident_id: uuid.UUID, pages: Sequence[SealedRows]
    ) -> list[R | Unreadable]:
        if not any(pages):
            return []
        try:
            keys = await self._keys.for_opening(self._session, resident_id)
        except KeyErased:
            # Erased while this read was under way, or rows restored without their keys: read
            # as erased (nothing listed), but logged and counted, since rows were there.
            note_without_key(kind.code, resident_id, sum(len(page) for page in pages))
            return []
        binding = Binding(resident_id, kind.code, kind.schema_version)
        return [record for page in pages for record in _opened(kind, keys, binding, page)[0]]


@dataclass(frozen=True)
class ResidentRecords:
    """One resident's opened records of the kinds a batch read asked for."""

    resident_id: uuid.UUID
    _by_kind: dict[str, list[Any]] = field(repr=False)
    _unreadable: dict[str, list[Unreadable]] = field(repr=False, default_factory=dict)

    def of(self, kind: RecordKind[R]) -> list[R]:
        """The resident's records of `kind` that opened (the batch read must have named it)."""
        return self._by_kind[kind.code]

    def unreadable(self, kind: RecordKind[Any]) -> list[Unreadable]:
        """The resident's records of `kind` left out because they do not open (logged and
        counted already): a job states how many it left out rather than stopping."""
        return self._unreadable.get(kind.code, [])


class BatchReader:
    """Every resident's records of some kinds in a date range, a batch of residents at a time."""

    def __init__(self, session: AsyncSession, keys: KeyStore, *, batch_size: int = 500) -> None:
        self._session = session
        self._rows = RecordRows(session)
        self._keys = keys
        self._batch_size = batch_size

    async def residents(
        self, kinds: Sequence[RecordKind[Any]], start: date, end: date
    ) -> AsyncIterator[ResidentRecords]:
        """Each resident with a data key, in id order, with their records of `kinds` in
        [start, end] (empty lists where they have none)."""
        after = _NO_RESIDENT
        while batch := await self._rows.residents_after(after, self._batch_size):
            async for records in self.of(batch, kinds, start, end):
                yield records
            after = batch[-1]

    async def of(
        self,
        residents: Sequence[uuid.UUID],
        kinds: Sequence[RecordKind[Any]],
        start: date,
        end: date,
    ) -> AsyncIterator[ResidentRecords]:
        """These residents' records (one batch: a query per kind, then one for their keys and one
        provider round), each resident that has a data key in the order given.

        Rows are read before keys. An erasure takes a resident's keys and rows in one commit: one
        that lands between the two queries leaves rows without a key, and the resident is
        skipped, not an error. (Read the other way round, they would be read as a resident with
        a key and nothing recorded.)"""
        rows = {
            kind.code: await self._rows.of_residents(kind, residents, start, end) for kind in kinds
        }
        keys = await self._keys.for_opening_many(self._session, residents)
        for resident in residents:
            opening = keys.get(resident)
            if opening is None:
                # Erased, or never sealed anything: nothing of theirs opens. Rows without a key
                # are logged and counted as the single-resident reader does.
                for kind in kinds:
                    note_without_key(kind.code, resident, len(rows[kind.code].get(resident) or ()))
                continue
            records: dict[str, list[Any]] = {}
            unreadable: dict[str, list[Unreadable]] = {}
            for kind in kinds:
                found = rows[kind.code].get(resident)
                if not found:
                    records[kind.code] = []
                    continue
                binding = Binding(resident, kind.code, kind.schema_version)
                opened, unreadable[kind.code] = _opened(kind, opening, binding, found)
                records[kind.code] = split(opened)[0] if unreadable[kind.code] else opened
            yield ResidentRecords(resident, records, unreadable)
