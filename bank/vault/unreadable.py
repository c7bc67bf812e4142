"""Records that do not open: a marker in the read's result, a log event and a counter.

A sealed value that fails authentication where it is stored (tampered, copied from another row,
day, resident or revision, or sealed under a key version that is gone) is a security event,
never a crash and never served. The reader puts an `Unreadable` marker where the record would
have been, so a list keeps its order and its cursor, and the rest of the resident's records are
still served. Each marker is logged as `vault.record_unreadable` (ids, day and revision only:
never a value) and counted in `bank_records_unreadable_total{kind, reason}`.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import TypeVar

import msgspec
from prometheus_client import Counter

from bank.logs import get_logger

R = TypeVar("R")

log = get_logger("bank.vault")

# Why a record was left out: its value does not open where it is stored, or the resident has rows
# but no data key at all (read as erased: the rows are not listed, see docs/vault.md).
DOES_NOT_OPEN = "does-not-open"
NO_DATA_KEY = "no-data-key"


class Unreadable(msgspec.Struct, frozen=True, gc=False):
    """A stored record that did not open: where it is, never what it holds."""

    kind: str  # the kind's code (steps, transit_tap, checkup)
    day: date
    row_key: str  # what orders a day's rows: the source of a step day, a record's natural key
    revision: int


@functools.cache
def _counter() -> Counter:
    # Made on first use, not at import, for the reason bank.workers makes its gauge so: with
    # several processes the metric lives in PROMETHEUS_MULTIPROC_DIR, made after imports.
    return Counter(
        "bank_records_unreadable",
        "Stored records left out of a read because they do not open (tampered, moved, an older "
        "revision, or no data key).",
        ["kind", "reason"],
    )


def note_unreadable(kind: str, resident_id: uuid.UUID, records: Sequence[Unreadable]) -> None:
    """Log and count the records of one resident's read that do not open, one event each."""
    if not records:
        return
    _counter().labels(kind=kind, reason=DOES_NOT_OPEN).inc(len(records))
    for record in records:
        # The resident id is the bank's pseudonymous account id; the day and revision say which
        # row to look at. The row key is left out: a step day's is a platform, but a pushed
        # record's names the source's own identifiers.
        log.warning(
            "vault.record_unreadable",
            kind=kind,
            resident_id=str(resident_id),
            day=record.day.isoformat(),
            revision=record.revision,
            reason=DOES_NOT_OPEN,
        )


def note_without_key(kind: str, resident_id: uuid.UUID, rows: int) -> None:
    """Log once and count the rows of a resident who has rows of a kind but no data key (erased
    while the read was under way, or a database restored without its key store)."""
    if rows == 0:
        return
    _counter().labels(kind=kind, reason=NO_DATA_KEY).inc(rows)
    log.warning(
        "vault.record_unreadable",
        kind=kind,
        resident_id=str(resident_id),
        rows=rows,
        reason=NO_DATA_KEY,
    )


class Records(list[R]):
    """The records of a whole read that opened, in read order, and in `unreadable` the markers
    of those left out: a list, so callers that only sum or list records are unchanged."""

    __slots__ = ("unreadable",)

    def __init__(self, records: Iterable[R] = (), unreadable: Iterable[Unreadable] = ()) -> None:
        super().__init__(records)
        self.unreadable = list(unreadable)


def split(rows: Iterable[R | Unreadable]) -> tuple[list[R], list[Unreadable]]:
    """The records that opened, and the markers of those that did not, each in read order."""
    opened: list[R] = []
    unreadable: list[Unreadable] = []
    for row in rows:
        if isinstance(row, Unreadable):
            unreadable.append(row)
        else:
            opened.append(row)
    return opened, unreadable
