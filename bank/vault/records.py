"""Sealed records pushed by data sources (transit taps, checkups): idempotent store and read.

The same rules as the steps: one transaction per batch; for each item, no row yet → stored, a row
with the same sealed-over payload → unchanged, another payload → replaced (revision + 1). Items
are grouped by resident; residents are locked in id order (advisory locks, so two batches naming
the same residents never deadlock and never lose an update) and each resident's data key seals
all of their items at once.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from sqlalchemy import (
    Date,
    Integer,
    LargeBinary,
    Text,
    Uuid,
    any_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.sealing import Binding, open_sealed, seal_many
from bank.db import locks as db_locks
from bank.db.bulk import Unnest
from bank.db.locks import resident_lock_statement
from bank.vault.keystore import DataKey, KeyStore
from bank.vault.models import Record
from bank.vault.rules import Refusal

Outcome = Literal["stored", "replaced", "unchanged", "refused"]
OUTCOMES: tuple[Outcome, ...] = ("stored", "replaced", "unchanged", "refused")


@dataclass(frozen=True)
class ItemResult:
    index: int
    outcome: Outcome
    refusals: tuple[Refusal, ...] = ()


@dataclass(frozen=True)
class Incoming:
    """One valid item, routed to its resident, its payload already encoded canonically."""

    index: int
    resident_id: uuid.UUID
    natural_key: str
    day: date
    payload: bytes


# The kernel's resident lock, reading in the same round trip whether the resident has a data key.
_LOCK_RESIDENT = resident_lock_statement(
    select(DataKey.version).where(DataKey.resident_id == bindparam("resident")).exists(),
)

# The statements of a push, built once (bank.db.bulk): parameters `resident`, `record_kind`,
# `pushed_by` (the source client) and the arrays.
_EXISTING = select(Record.natural_key, Record.sealed, Record.revision).where(
    Record.resident_id == bindparam("resident"),
    Record.kind == bindparam("record_kind"),
    Record.natural_key == any_(cast(bindparam("natural_keys"), ARRAY(Text))),
)
_NEW_ROWS = Unnest("rows", natural_key=Text(), day=Date(), sealed=LargeBinary())
# "raw": run as written with the arrays as parameters (a dict of parameters would make
# the ORM take it for a bulk insert of one row).
_INSERT = insert(Record).from_select(
    ["resident_id", "kind", "natural_key", "day", "sealed", "revision", "source_client"],
    select(
        bindparam("resident", type_=Uuid()), bindparam("record_kind", type_=Text()),
        _NEW_ROWS.c.natural_key, _NEW_ROWS.c.day, _NEW_ROWS.c.sealed, literal(1),
        bindparam("pushed_by", type_=Text()),
    ),
).execution_options(dml_strategy="raw")  # fmt: skip
_CHANGED_ROWS = Unnest(
    "rows", natural_key=Text(), day=Date(), sealed=LargeBinary(), revision=Integer()
)
_UPDATE = (
    update(Record)
    .where(
        Record.resident_id == bindparam("resident"),
        Record.kind == bindparam("record_kind"),
        Record.natural_key == _CHANGED_ROWS.c.natural_key,
    )
    .values(
        day=_CHANGED_ROWS.c.day, sealed=_CHANGED_ROWS.c.sealed, revision=_CHANGED_ROWS.c.revision,
        source_client=bindparam("pushed_by"), updated_at=func.now(),
    )
    .execution_options(synchronize_session=False)
)  # fmt: skip


@dataclass(frozen=True)
class ResidentLock:
    account_exists: bool
    # Whether the resident had a data key when the lock was taken: a first push then creates
    # one straight away instead of first trying to reserve seals on none (KeyStore.for_sealing).
    has_data_key: bool


async def lock_resident(session: AsyncSession, topic: str, resident_id: uuid.UUID) -> ResidentLock:
    """The kernel's resident lock (bank.db.locks) for `topic`, and whether the resident has a
    data key yet, in one round trip."""
    lock = await db_locks.lock_resident(session, topic, resident_id, _LOCK_RESIDENT)
    return ResidentLock(account_exists=lock.account_exists, has_data_key=bool(lock.also[0]))


def superseded(keys: Sequence[object]) -> set[int]:
    """Indexes whose key appears again later in the batch: the last one counts."""
    last = {key: index for index, key in enumerate(keys)}
    return {index for index, key in enumerate(keys) if last[key] != index}


async def store_records(
    session: AsyncSession,
    keys: KeyStore,
    *,
    kind: str,
    schema_version: int,
    source_client: str,
    items: Sequence[Incoming],
) -> dict[int, ItemResult]:
    """Store valid items (unique per resident and natural key); the result of each by index."""
    by_resident: dict[uuid.UUID, list[Incoming]] = defaultdict(list)
    for item in items:
        by_resident[item.resident_id].append(item)
    outcomes: dict[int, ItemResult] = {}
    for resident_id in sorted(by_resident):
        outcomes |= await _store_for(
            session, keys, resident_id, kind, schema_version, source_client,
            by_resident[resident_id],
        )  # fmt: skip
    return outcomes


async def _store_for(
    session: AsyncSession,
    keys: KeyStore,
    resident_id: uuid.UUID,
    kind: str,
    schema_version: int,
    source_client: str,
    items: list[Incoming],
) -> dict[int, ItemResult]:
    lock = await lock_resident(session, f"records:{kind}", resident_id)
    if not lock.account_exists:
        gone = Refusal("$", "The resident's account was erased; the record was not stored.")
        return {item.index: ItemResult(item.index, "refused", (gone,)) for item in items}
    where = {"resident": resident_id, "record_kind": kind}
    natural_keys = [item.natural_key for item in items]
    existing = {
        row.natural_key: row
        for row in await session.execute(_EXISTING, {**where, "natural_keys": natural_keys})
    }
    opened = await keys.for_opening(session, resident_id) if existing else {}
    binding = Binding(resident_id, kind, schema_version)
    outcomes: dict[int, Outcome] = {}
    inserts: list[Incoming] = []
    updates: list[tuple[Incoming, int]] = []
    for item in items:
        row = existing.get(item.natural_key)
        if row is None:
            outcomes[item.index] = "stored"
            inserts.append(item)
            continue
        if open_sealed(opened, binding, item.natural_key, row.revision, row.sealed) == item.payload:
            outcomes[item.index] = "unchanged"
            continue
        outcomes[item.index] = "replaced"
        updates.append((item, row.revision + 1))
    if not inserts and not updates:
        return _results(outcomes)
    key = await keys.for_sealing(
        session, resident_id, len(inserts) + len(updates), has_key=lock.has_data_key
    )

    def sealed(batch: Sequence[tuple[Incoming, int]]) -> list[bytes]:
        values = [(item.natural_key, revision, item.payload) for item, revision in batch]
        return seal_many(key, binding, values)

    where["pushed_by"] = source_client
    if inserts:
        rows = _NEW_ROWS.params(
            natural_key=[item.natural_key for item in inserts],
            day=[item.day for item in inserts],
            sealed=sealed([(item, 1) for item in inserts]),
        )
        await session.execute(_INSERT, {**where, **rows})
    if updates:
        rows = _CHANGED_ROWS.params(
            natural_key=[item.natural_key for item, _ in updates],
            day=[item.day for item, _ in updates],
            sealed=sealed(updates),
            revision=[revision for _, revision in updates],
        )
        await session.execute(_UPDATE, {**where, **rows})
    return _results(outcomes)


def _results(outcomes: dict[int, Outcome]) -> dict[int, ItemResult]:
    return {index: ItemResult(index, outcome) for index, outcome in outcomes.items()}
