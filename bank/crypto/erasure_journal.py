"""The erasure journal's entries: which resident was erased, when, and under which receipt.

The journal lives with the key provider (a file beside the local KEKs, data objects on a PKCS#11
token), never only in the database, so that restoring a database backup cannot roll it back: on
start-up and by `bank erasures reapply` every journalled resident found in the database is erased
again (bank.vault.erasure_journal). An entry holds the resident's pseudonymous account id, the
time and the receipt id, nothing else; it is one line of text, the same on every provider:
`<resident id> <erased at, ISO 8601 UTC> <receipt id>\\n`.

A file journal may end in a torn line (the process died inside a write): that write was never
acknowledged (its fsync did not return, so its erasure raised and rolled back), so readers skip
it and the next append cuts it off. Any other line that does not parse is corruption and is
reported, never skipped: a journal that silently lost entries would un-erase residents.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from bank.crypto.provider import KeyProviderError


@dataclass(frozen=True)
class ErasureEntry:
    resident_id: uuid.UUID
    erased_at: datetime
    receipt_id: uuid.UUID

    def __post_init__(self) -> None:
        if self.erased_at.tzinfo is None:
            raise ValueError("an erasure time must be timezone-aware")

    def line(self) -> bytes:
        """The entry as one journal line, newline included."""
        at = self.erased_at.astimezone(UTC).isoformat()
        return f"{self.resident_id} {at} {self.receipt_id}\n".encode("ascii")

    @classmethod
    def parse(cls, line: bytes) -> ErasureEntry:
        """One line without its newline; ValueError if it is not an entry."""
        resident, at, receipt = line.decode("ascii").split(" ")
        erased_at = datetime.fromisoformat(at)
        if erased_at.tzinfo is None:
            raise ValueError("an erasure time without a zone")
        return cls(uuid.UUID(resident), erased_at, uuid.UUID(receipt))


def parse_journal(data: bytes) -> list[ErasureEntry]:
    """Every complete entry of a journal file, in order; a torn last line (no newline) is
    skipped; KeyProviderError if a complete line is not an entry."""
    lines = data.split(b"\n")
    complete = lines[:-1]  # the last piece is b"" after a final newline, else the torn line
    return parse_lines(complete)


def parse_lines(lines: Iterable[bytes]) -> list[ErasureEntry]:
    entries = []
    for number, line in enumerate(lines, start=1):
        try:
            entries.append(ErasureEntry.parse(line))
        except (ValueError, UnicodeDecodeError):
            # The line number only: the content is not ours to echo into a log.
            raise KeyProviderError(f"erasure journal entry {number} is corrupt") from None
    return entries
