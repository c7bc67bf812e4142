"""Blocking work off the event loop: a bounded worker-thread pool per kind of work.

Password hashing and HSM calls each get their own bound, so one cannot starve the other, and
neither takes anyio's default pool, which every `sync_to_thread` handler shares.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from anyio import CapacityLimiter

T = TypeVar("T")


class ThreadBound:
    """At most `size` calls of one kind in worker threads at once, in each event loop.

    An anyio limiter belongs to one event loop (the CLI runs a loop per command, tests a loop
    per session), so each loop gets its own, all of the current size.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = (
            weakref.WeakKeyDictionary()
        )

    def resize(self, size: int) -> None:
        self._size = size
        for limiter in self._limiters.values():
            limiter.total_tokens = size

    def limiter(self) -> CapacityLimiter:
        """The running loop's limiter."""
        loop = asyncio.get_running_loop()
        limiter = self._limiters.get(loop)
        if limiter is None:
            limiter = self._limiters[loop] = CapacityLimiter(self._size)
        return limiter

    async def run(self, call: Callable[[], T]) -> T:
        """`call()` in a worker thread, waiting for a place when `size` are already running."""
        return await anyio.to_thread.run_sync(call, limiter=self.limiter())
