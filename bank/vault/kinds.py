"""Record kinds: what the vault stores, where, and the typed record each opens into.

A kind names its table, its payload's schema version and how a stored row becomes a typed,
opened record; the reader (bank.vault.reader) reads every kind the same way through it. The
sealed payload types live with the kind's ingest module (bank.vault.steps, .transit, .checkups)
and each declares its kind there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Generic, TypeVar

import msgspec

R = TypeVar("R")


class Table(StrEnum):
    # step_days: (resident, day, source), a source's day; its natural key is "<day>|<source>".
    STEP_DAYS = "step_days"
    # records: (resident, kind, natural_key) with the day in clear, for pushed taps and checkups.
    RECORDS = "records"


@dataclass(frozen=True)
class RecordKind(Generic[R]):
    code: str  # stable: in the associated data of every sealed record and in the records table
    schema_version: int
    table: Table
    # (row key, day, revision, plaintext) -> the opened record. The row key is what orders a
    # day's rows: the source for step days, the natural key for records.
    opened: Callable[[str, date, int, bytes], R]

    def natural_key(self, day: date, row_key: str) -> str:
        """The key the associated data names (a step day's source alone is not unique)."""
        return f"{day.isoformat()}|{row_key}" if self.table is Table.STEP_DAYS else row_key


# A msgspec Struct rather than a dataclass: a batch makes one per record, and a frozen
# dataclass's __init__ costs ten times as much (1.4 µs against 0.15). Never part of a cycle, so
# the collector need not track it.
class Opened(msgspec.Struct, Generic[R], frozen=True, gc=False):
    """A pushed record, opened: its natural key, local day and revision beside the payload."""

    natural_key: str
    day: date
    revision: int
    payload: R
