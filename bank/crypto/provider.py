"""Key-encryption keys and blind-index keys, behind one small interface (DESIGN.md §4).

A KeyProvider holds keys the database never sees: versioned key-encryption keys (KEKs) that
wrap residents' data keys, and the key under which blind indexes (card numbers, insurer member
numbers) are computed. Two implementations: `LocalKeyProvider` (key files, the embedded default)
and `Pkcs11KeyProvider` (an HSM through PKCS#11; SoftHSM2 in tests). The interface is small on
purpose, so that a Vault Transit provider can follow. Its methods are synchronous; async code
calls them through `ProviderCalls` (bank.crypto.provider_calls), which keeps blocking ones off
the event loop.

KEK versions are positive integers; the highest present is current. `new_kek_version()` makes
the next one; `retire_kek_version(v)` destroys an old one once nothing is wrapped under it.
Wrapping binds associated data (the resident and the data key's version), so a wrapped key moved
to another resident's row fails to unwrap.

Each version also has a start time, kept beside it by the provider (never in the database a
backup restores): when the rotation that made it had re-wrapped every data key. It decides when
the next scheduled rotation is due and when the version before it may be destroyed
(bank.vault.kek_schedule).

The provider also keeps the erasure journal (bank.crypto.erasure_journal): append-only, beside
the KEKs, so that no database restore rolls an erasure back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bank.crypto.erasure_journal import ErasureEntry


class KeyProviderError(Exception):
    """A key is missing or unusable, or a wrapped key does not unwrap (wrong AAD, tampering)."""


@dataclass(frozen=True)
class WrappedKey:
    kek_version: int
    blob: bytes

    def __repr__(self) -> str:
        return f"WrappedKey(kek_version={self.kek_version}, blob=***)"


class KeyProvider(Protocol):
    name: str
    # True when a call may wait on a device or the network (an HSM): async code then makes its
    # calls in worker threads (bank.crypto.provider_calls), never on the event loop.
    blocking: bool

    def current_kek_version(self) -> int:
        """The version new data keys are wrapped under (creating version 1 on first use)."""
        ...

    def kek_versions(self) -> list[int]:
        """Every version still present, ascending."""
        ...

    def new_kek_version(self) -> int:
        """Create the next KEK version; it becomes current."""
        ...

    def retire_kek_version(self, version: int) -> None:
        """Destroy an old KEK version (never the current one)."""
        ...

    def kek_started(self) -> dict[int, datetime | None]:
        """When each present version started (UTC): the moment from which every data key was
        wrapped under it or a newer one (the end of its rotation's re-wrap), or None where no
        start was recorded. The scheduled rotation and retirement count from these times."""
        ...

    def mark_kek_started(self, version: int, at: datetime) -> None:
        """Record a present version's start (`at`, timezone-aware), replacing any earlier one."""
        ...

    def wrap(self, data_key: bytes, *, aad: bytes) -> WrappedKey:
        """Encrypt a data key under the current KEK (AES-256-GCM or the HSM's equivalent)."""
        ...

    def unwrap(self, wrapped: WrappedKey, *, aad: bytes) -> bytes:
        """Decrypt a data key; KeyProviderError if the version is gone or the AAD differs."""
        ...

    def blind_index(self, purpose: str, value: bytes) -> bytes:
        """HMAC-SHA256 of `value` under the provider's blind-index key, separated by purpose."""
        ...

    def journal_erasure(self, entry: ErasureEntry) -> None:
        """Append an entry to the erasure journal, durably (returns once it is stored)."""
        ...

    def erasures(self) -> list[ErasureEntry]:
        """Every journalled erasure, oldest first."""
        ...

    def is_erased(self, resident_id: uuid.UUID) -> bool:
        """Whether the journal holds an entry for this resident."""
        ...
