"""Key provider calls from async code on a real SoftHSM2 token: none runs on the event loop's thread
while many unwraps and blind indexes run at once, and the answers are the provider's own."""

from __future__ import annotations

import asyncio
import secrets
import threading
import uuid
from pathlib import Path
from typing import Any

from bank.crypto.local_provider import LocalKeyProvider
from bank.crypto.provider import WrappedKey
from bank.crypto.provider_calls import PROVIDER_THREADS, ProviderCalls, provider_limiter
from tests.bank.crypto.softhsm import SoftHsm

_METHODS = ("wrap", "unwrap", "blind_index", "current_kek_version")


def threads_of_calls(provider: Any) -> set[int]:
    """Record, on this provider object, the thread each of its key calls runs on: the real
    provider still does the work. Whether a call ran on the event loop's thread is a fact, where
    how long the loop stalled would be a timing (benchmarks measure those, tests do not)."""
    threads: set[int] = set()
    for name in _METHODS:
        method = getattr(provider, name)

        def recorded(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
            threads.add(threading.get_ident())
            return _method(*args, **kwargs)

        setattr(provider, name, recorded)
    return threads


async def test_hsm_unwraps_and_blind_indexes_run_off_the_event_loop(softhsm: SoftHsm) -> None:
    provider = softhsm.provider()
    keys = [secrets.token_bytes(32) for _ in range(400)]
    aads = [f"data-key:{uuid.uuid4()}:1".encode() for _ in keys]
    wrapped = [provider.wrap(key, aad=aad) for key, aad in zip(keys, aads, strict=True)]
    numbers = [f"JE80 {index:012d}".encode() for index in range(400)]
    expected_indexes = [provider.blind_index("transit.card", number) for number in numbers]
    calls = ProviderCalls(provider)
    batches = [slice(start, start + 50) for start in range(0, 400, 50)]

    async def work() -> tuple[list[list[bytes]], list[list[bytes]]]:
        unwrapping = asyncio.gather(
            *(
                calls.unwrap_all(list(zip(wrapped[part], aads[part], strict=True)))
                for part in batches
            )
        )
        indexing = asyncio.gather(
            *(calls.blind_indexes("transit.card", numbers[part]) for part in batches)
        )
        return await unwrapping, await indexing

    threads = threads_of_calls(provider)
    unwrapped, indexes = await work()

    assert [key for batch in unwrapped for key in batch] == keys
    assert [index for batch in indexes for index in batch] == expected_indexes
    # Every HSM call ran on a worker thread, none on the event loop's.
    assert threads
    assert threading.get_ident() not in threads
    assert provider_limiter().total_tokens == PROVIDER_THREADS


async def test_hsm_calls_from_many_tasks_share_one_session_safely(softhsm: SoftHsm) -> None:
    """Many tasks at once through the bounded pool: the provider's lock serialises the shared
    session, so every answer is right and no call fails with a session error."""
    provider = softhsm.provider()
    calls = ProviderCalls(provider)
    keys = [secrets.token_bytes(32) for _ in range(64)]
    aad = b"data-key:6f1c8a52-0000-4000-8000-000000000001:1"
    wrapped: list[WrappedKey] = await asyncio.gather(*(calls.wrap(key, aad=aad) for key in keys))
    assert await asyncio.gather(*(calls.unwrap(item, aad=aad) for item in wrapped)) == keys
    assert {item.kek_version for item in wrapped} == {await calls.current_kek_version()}


async def test_the_local_provider_runs_inline(tmp_path: Path) -> None:
    """Key files: microseconds of AES in process, cheaper than a thread hop (decisions.md)."""
    provider = LocalKeyProvider(tmp_path / "vault")
    calls = ProviderCalls(provider)
    aad = b"data-key:6f1c8a52-0000-4000-8000-000000000001:1"
    wrapped = await calls.wrap(b"k" * 32, aad=aad)
    assert provider.blocking is False
    assert await calls.unwrap(wrapped, aad=aad) == provider.unwrap(wrapped, aad=aad) == b"k" * 32
    assert await calls.blind_index("transit.card", b"JE80") == provider.blind_index(
        "transit.card", b"JE80"
    )
