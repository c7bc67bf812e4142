"""Key provider calls from async code: off the event loop, in a bounded pool, when they block."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import TypeVar

from anyio import CapacityLimiter

from bank.crypto.erasure_journal import ErasureEntry
from bank.crypto.provider import KeyProvider, WrappedKey
from bank.threads import ThreadBound

T = TypeVar("T")

# A PKCS#11 module is called one caller at a time anyway (pkcs11_provider's process-wide lock),
# so more threads would only queue on that lock; a few keep a slow HSM from taking anyio's
# default pool (shared with every `sync_to_thread` handler) while still overlapping a network
# provider's round trips.
PROVIDER_THREADS = 4

_PROVIDER = ThreadBound(PROVIDER_THREADS)


def provider_limiter() -> CapacityLimiter:
    """The running loop's limiter every blocking key provider call goes through."""
    return _PROVIDER.limiter()


class ProviderCalls:
    """A KeyProvider's operations as coroutines: a provider that says it blocks (`blocking`,
    the HSM) runs in a worker thread, one that does not (local key files: microseconds of AES
    in process) runs inline, where a thread hop would cost more than the call."""

    def __init__(self, provider: KeyProvider) -> None:
        self.provider = provider

    def __repr__(self) -> str:
        return f"ProviderCalls({self.provider!r})"

    async def run(self, operation: Callable[[KeyProvider], T]) -> T:
        """`operation(provider)` off the loop if the provider blocks: several calls in one
        `operation` (a batch of unwraps) take one thread hop."""
        if not self.provider.blocking:
            return operation(self.provider)
        return await _PROVIDER.run(partial(operation, self.provider))

    async def wrap(self, data_key: bytes, *, aad: bytes) -> WrappedKey:
        return await self.run(lambda provider: provider.wrap(data_key, aad=aad))

    async def unwrap_all(self, wrapped: Sequence[tuple[WrappedKey, bytes]]) -> list[bytes]:
        """Unwrap each (wrapped key, associated data) pair, in order."""
        return await self.run(
            lambda provider: [provider.unwrap(key, aad=aad) for key, aad in wrapped]
        )

    async def unwrap(self, wrapped: WrappedKey, *, aad: bytes) -> bytes:
        return (await self.unwrap_all([(wrapped, aad)]))[0]

    async def blind_indexes(self, purpose: str, values: Sequence[bytes]) -> list[bytes]:
        return await self.run(
            lambda provider: [provider.blind_index(purpose, value) for value in values]
        )

    async def blind_index(self, purpose: str, value: bytes) -> bytes:
        return (await self.blind_indexes(purpose, [value]))[0]

    async def current_kek_version(self) -> int:
        return await self.run(lambda provider: provider.current_kek_version())

    async def kek_versions(self) -> list[int]:
        return await self.run(lambda provider: provider.kek_versions())

    async def new_kek_version(self) -> int:
        return await self.run(lambda provider: provider.new_kek_version())

    async def retire_kek_version(self, version: int) -> None:
        await self.run(lambda provider: provider.retire_kek_version(version))

    async def kek_started(self) -> dict[int, datetime | None]:
        return await self.run(lambda provider: provider.kek_started())

    async def mark_kek_started(self, version: int, at: datetime) -> None:
        await self.run(lambda provider: provider.mark_kek_started(version, at))

    async def journal_erasure(self, entry: ErasureEntry) -> None:
        await self.run(lambda provider: provider.journal_erasure(entry))

    async def erasures(self) -> list[ErasureEntry]:
        return await self.run(lambda provider: provider.erasures())

    async def is_erased(self, resident_id: uuid.UUID) -> bool:
        return await self.run(lambda provider: provider.is_erased(resident_id))
