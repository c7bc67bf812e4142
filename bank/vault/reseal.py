"""`bank vault reseal`: every format-1 value sealed again as format 2, bound to its row's revision.

Format-1 values (sealed before revisions were bound, bank.crypto.sealing) open only in rows at
revision 1. The reseal finds them by their first byte, in every table that holds sealed values,
a batch of residents at a time in id order, each batch its own transaction:

1. Each resident of the batch is locked, in id order, under every topic its record writers lock
   (`steps` for step days and their revisions, `records:<kind>` for taps and checkups): no push
   reads a value the reseal is replacing, or copies one into a revision row behind its back, and
   an erasure waits for the batch. Links and exports are written once and never replaced (only
   deleted), so they need no lock: the UPDATE below finds a deleted row gone.
2. Each value is opened with `open_unbound_revision` (whatever its row's revision: the operator
   trusts the database as it is at the upgrade) and sealed under the resident's current sealing
   key at the row's revision (a link's and an export's is always 1).
3. Each row is updated only if it still holds the exact bytes that were read.

A value that does not open (tampered, or its key is gone) is left as it is and counted. A crash
loses at most the batch under way; run it again: it finds only what is left (and the values that
did not open, counted again), so a second run after a complete one reseals nothing.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.keystore import KeyStore
from bank.crypto.sealing import (
    Binding,
    OpeningKeys,
    RecordDoesNotOpen,
    SealingKey,
    open_unbound_revision,
    seal_many,
)
from bank.db import Database
from bank.db.locks import lock_resident
from bank.logs import get_logger
from bank.vault.checkups import CHECKUPS
from bank.vault.kinds import RecordKind
from bank.vault.repository import ResealRows, SealedTable, UnboundRow
from bank.vault.steps import STEPS
from bank.vault.transit import TAPS

log = get_logger("bank.vault")

RESEAL_BATCH = 50
_NO_RESIDENT = uuid.UUID(int=0)

# The topics the writers of step days (bank.vault.steps) and of records (bank.vault.records)
# lock a resident under, in one fixed order: each writer takes one topic per resident, in
# resident id order, so taking (resident, topic) in this order never waits in a cycle with one.
_WRITER_TOPICS = tuple(sorted(["steps", *(f"records:{kind.code}" for kind in (TAPS, CHECKUPS))]))
_RECORD_KINDS: dict[str, RecordKind[Any]] = {kind.code: kind for kind in (TAPS, CHECKUPS)}
# Links (bank.vault.links) and exports (bank.vault.exports) are sealed at revision 1 under
# these kinds and schema version 1, and never revised.
_LINK = ("link", 1)
_EXPORT = ("export", 1)


@dataclass
class ResealSummary:
    """Values resealed and values that did not open, per table; residents with a value
    resealed."""

    resealed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SealedTable, 0))
    did_not_open: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SealedTable, 0))
    residents: int = 0

    def add(self, other: ResealSummary) -> None:
        for table in SealedTable:
            self.resealed[table] += other.resealed[table]
            self.did_not_open[table] += other.did_not_open[table]
        self.residents += other.residents

    def as_json(self) -> dict[str, object]:
        return {
            "resealed": {str(table): count for table, count in self.resealed.items()},
            "did_not_open": {str(table): count for table, count in self.did_not_open.items()},
            "residents": self.residents,
        }


async def reseal(
    database: Database,
    keystore: KeyStore,
    *,
    batch_size: int = RESEAL_BATCH,
    after_batch: Callable[[ResealSummary], None] | None = None,
) -> ResealSummary:
    """Reseal every format-1 value as format 2, `batch_size` residents per transaction.

    `after_batch` is called with the running summary after each committed batch. A
    KeyProviderError (a KEK missing) stops the run; the batches before it stay done.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    summary = ResealSummary()
    after = _NO_RESIDENT
    while True:
        async with database.unit_of_work() as session:
            batch = await ResealRows(session).residents_after(after, batch_size)
            if not batch:
                break
            done = await _reseal_batch(session, keystore, batch)
        summary.add(done)
        after = batch[-1]
        log.info(
            "vault.reseal.batch",
            resealed=sum(done.resealed.values()),
            did_not_open=sum(done.did_not_open.values()),
            residents=done.residents,
        )
        if after_batch is not None:
            after_batch(summary)
    log.info(
        "vault.reseal.finished",
        resealed=sum(summary.resealed.values()),
        did_not_open=sum(summary.did_not_open.values()),
        residents=summary.residents,
    )
    return summary


async def _reseal_batch(
    session: AsyncSession, keystore: KeyStore, batch: Sequence[uuid.UUID]
) -> ResealSummary:
    done = ResealSummary()
    live: list[uuid.UUID] = []
    for resident in sorted(batch):
        locks = [await lock_resident(session, topic, resident) for topic in _WRITER_TOPICS]
        if all(lock.account_exists for lock in locks):
            live.append(resident)  # else erased meanwhile: its rows went with the account
    if not live:
        return done
    rows = ResealRows(session)
    by_resident: dict[uuid.UUID, list[UnboundRow]] = defaultdict(list)
    for row in await rows.of(live):
        by_resident[row.resident_id].append(row)
    keys = await keystore.for_opening_many(session, list(by_resident))
    replacements: dict[SealedTable, list[tuple[UnboundRow, bytes]]] = defaultdict(list)
    for resident, unbound in by_resident.items():
        opened = _opened(keys.get(resident, {}), unbound, done)
        if opened:
            sealing = await keystore.for_sealing(session, resident, len(opened))
            for row, new in _sealed(sealing, resident, opened):
                replacements[row.table].append((row, new))
    resealed: set[uuid.UUID] = set()
    for table, values in replacements.items():
        written = await rows.replace(table, values)
        done.resealed[table] = len(written)
        resealed.update(written)
    done.residents = len(resealed)
    return done


@dataclass(frozen=True, slots=True)
class _Place:
    """Where a value belongs: its binding's kind and schema version, natural key and revision."""

    kind: str
    schema_version: int
    natural_key: str
    revision: int


def _place(row: UnboundRow) -> _Place:
    if row.table in (SealedTable.STEP_DAYS, SealedTable.STEP_DAY_REVISIONS):
        natural_key = STEPS.natural_key(row.key[1], row.key[2])
        return _Place(STEPS.code, STEPS.schema_version, natural_key, _revision(row))
    if row.table is SealedTable.RECORDS:
        kind = _RECORD_KINDS[row.key[1]]
        return _Place(kind.code, kind.schema_version, row.key[2], _revision(row))
    kind_code, schema_version = _LINK if row.table is SealedTable.LINKS else _EXPORT
    return _Place(kind_code, schema_version, str(row.key[1]), 1)


def _revision(row: UnboundRow) -> int:
    assert row.revision is not None  # step days, their revisions and records keep one
    return row.revision


def _opened(
    keys: OpeningKeys, unbound: Sequence[UnboundRow], done: ResealSummary
) -> list[tuple[UnboundRow, _Place, bytes]]:
    """Each value that opens, with its place and plaintext; the others are counted in `done`."""
    opened: list[tuple[UnboundRow, _Place, bytes]] = []
    for row in unbound:
        place = _place(row)
        binding = Binding(row.resident_id, place.kind, place.schema_version)
        try:
            plaintext = open_unbound_revision(keys, binding, place.natural_key, row.sealed)
        except RecordDoesNotOpen:
            done.did_not_open[row.table] += 1
            continue
        opened.append((row, place, plaintext))
    return opened


def _sealed(
    key: SealingKey, resident: uuid.UUID, opened: Sequence[tuple[UnboundRow, _Place, bytes]]
) -> list[tuple[UnboundRow, bytes]]:
    """Each value sealed as format 2 at its place, one `seal_many` per binding."""
    by_binding: dict[tuple[str, int], list[tuple[UnboundRow, _Place, bytes]]] = defaultdict(list)
    for value in opened:
        by_binding[value[1].kind, value[1].schema_version].append(value)
    sealed: list[tuple[UnboundRow, bytes]] = []
    for (kind, schema_version), values in by_binding.items():
        new = seal_many(
            key,
            Binding(resident, kind, schema_version),
            [(place.natural_key, place.revision, plaintext) for _, place, plaintext in values],
        )
        sealed += [(row, value) for (row, _, _), value in zip(values, new, strict=True)]
    return sealed
