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
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.keystore import KeyStore, ResidentErased
from bank.crypto.sealing import Binding, OpeningKeys, RecordDoesNotOpen, open_sealed, seal_many
from bank.vault.repository import PushedRecordRows, lock_resident
from bank.vault.rules import Refusal
from bank.vault.unreadable import Unreadable, note_unreadable

Outcome = Literal["stored", "replaced", "unchanged", "refused"]
OUTCOMES: tuple[Outcome, ...] = ("stored", "replaced", "unchanged", "refused")

# An erased resident's items: refused one by one, so the rest of the source's batch is stored.
_GONE = Refusal("$", "The resident's account was erased; the record was not stored.")


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
    lock = await lock_resident(
        session, f"records:{kind}", resident_id, keys_beside=not keys.database.separate
    )
    if not lock.account_exists:
        return {item.index: ItemResult(item.index, "refused", (_GONE,)) for item in items}
    rows = PushedRecordRows(session, resident_id, kind, pushed_by=source_client)
    existing = await rows.existing([item.natural_key for item in items])
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
        if _stored(opened, binding, item, row) == item.payload:
            outcomes[item.index] = "unchanged"
            continue
        outcomes[item.index] = "replaced"
        updates.append((item, row.revision + 1))
    if not inserts and not updates:
        return _results(outcomes)
    try:
        key = await keys.for_sealing(
            session, resident_id, len(inserts) + len(updates), has_key=lock.has_data_key
        )
    except ResidentErased:  # journalled as erased, in a restored database not yet reapplied
        return {item.index: ItemResult(item.index, "refused", (_GONE,)) for item in items}

    def sealed(batch: Sequence[tuple[Incoming, int]]) -> list[bytes]:
        values = [(item.natural_key, revision, item.payload) for item, revision in batch]
        return seal_many(key, binding, values)

    if inserts:
        await rows.insert(
            natural_keys=[item.natural_key for item in inserts],
            days=[item.day for item in inserts],
            sealed=sealed([(item, 1) for item in inserts]),
        )
    if updates:
        await rows.update(
            natural_keys=[item.natural_key for item, _ in updates],
            days=[item.day for item, _ in updates],
            sealed=sealed(updates),
            revisions=[revision for _, revision in updates],
        )
    return _results(outcomes)


def _stored(opened: OpeningKeys, binding: Binding, item: Incoming, row: Any) -> bytes | None:
    """The stored payload of the item's row; None if it does not open (then the item replaces
    it, and it is counted as a read would count it)."""
    try:
        return open_sealed(opened, binding, item.natural_key, row.revision, row.sealed)
    except RecordDoesNotOpen:
        marker = Unreadable(binding.kind, item.day, item.natural_key, row.revision)
        note_unreadable(binding.kind, binding.owner, [marker])
        return None


def _results(outcomes: dict[int, Outcome]) -> dict[int, ItemResult]:
    return {index: ItemResult(index, outcome) for index, outcome in outcomes.items()}
