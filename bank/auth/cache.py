"""A process's cache of client registrations and token standing, dropped when the database says so.

Checking an access token's standing (client suspended? token revoked? session ended?) and reading
a client's registration are one database round trip each, which was most of the cost of every
protected request and of every token request (benchmarks/oauth_tokens.py). They change rarely, and
every change fires `NOTIFY bank_auth_changed` from a trigger (migration 2026_12_06_0010) when it
commits. So each web process keeps what it read and forgets all of it when the channel speaks.

The cache is trusted only while its listener holds a live `LISTEN` connection: before the first
connection, after a connection is lost, and in apps that do not own their database (the tests'),
every lookup goes to the database. A keepalive query finds a silently dead connection within
`KEEPALIVE_S`. A read that raced with a change is not stored: each change bumps a generation,
and a value is kept only if the generation did not move while it was being read.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from bank.logs import get_logger

log = get_logger("bank.auth")

CHANNEL = "bank_auth_changed"
KEEPALIVE_S = 5.0
_MAX_ENTRIES = 100_000
_RETRY_S = (0.5, 1.0, 2.0, 5.0, 10.0)

V = TypeVar("V")

# Every cache of this process, so that a commit made here empties them before its response goes
# out (see _forget_on_commit below).
_PROCESS_CACHES: weakref.WeakSet[AuthCache] = weakref.WeakSet()


class AuthCache:
    """Values read from the database, kept only while change notifications are being heard."""

    def __init__(self, max_entries: int = _MAX_ENTRIES) -> None:
        self._entries: dict[Hashable, Any] = {}
        self._generation = 0
        self._live = False
        self._max_entries = max_entries
        _PROCESS_CACHES.add(self)

    @property
    def live(self) -> bool:
        return self._live

    def peek(self, key: Hashable) -> Any:
        """The cached value for `key` without reading anything (None: not cached, or dark)."""
        return self._entries.get(key) if self._live else None

    async def get(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value for `key`, or `load()`'s (kept if nothing changed meanwhile)."""
        if self._live and key in self._entries:
            value: V = self._entries[key]
            return value
        generation = self._generation
        value = await load()
        if self._live and generation == self._generation:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()  # tokens are short-lived: the cache refills at once
            self._entries[key] = value
        return value

    def invalidate(self) -> None:
        self._generation += 1
        self._entries.clear()

    def go_live(self) -> None:
        self.invalidate()  # nothing read before the LISTEN was in place can be trusted
        self._live = True

    def go_dark(self) -> None:
        self._live = False
        self.invalidate()


async def listen_for_changes(cache: AuthCache, dsn: str) -> None:
    """Keep `cache` live while a LISTEN connection to `dsn` works; reconnect when it does not.

    Runs until cancelled (the app's lifespan owns the task).
    """
    failed_attempts = 0
    while True:
        try:
            connection = await asyncpg.connect(
                dsn, timeout=5, server_settings={"application_name": "bank-auth-cache"}
            )
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            log.warning("auth.cache_listener_unavailable", error=type(exc).__name__)
            failed_attempts += 1
        else:
            failed_attempts = 0
            try:
                await _listen(cache, connection)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("auth.cache_listener_lost", error=type(exc).__name__)
            finally:
                cache.go_dark()
                with contextlib.suppress(OSError, TimeoutError, asyncpg.InterfaceError):
                    await connection.close(timeout=1)
        await asyncio.sleep(_RETRY_S[min(failed_attempts, len(_RETRY_S) - 1)])


async def _listen(cache: AuthCache, connection: Any) -> None:
    closed = asyncio.Event()

    def on_close(_: object) -> None:
        cache.go_dark()
        closed.set()

    await connection.add_listener(CHANNEL, lambda *_: cache.invalidate())
    connection.add_termination_listener(on_close)
    cache.go_live()
    log.info("auth.cache_listening")
    while not closed.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closed.wait(), KEEPALIVE_S)
            break
        # A connection whose peer vanished without a word fails here, not never.
        await connection.execute("SELECT 1", timeout=KEEPALIVE_S)
    raise ConnectionResetError("the listener's connection closed")


@contextlib.asynccontextmanager
async def listening(cache: AuthCache, dsn: str) -> AsyncIterator[AuthCache]:
    """`listen_for_changes` as a background task for the duration of the block."""
    task = asyncio.create_task(listen_for_changes(cache, dsn), name="auth-cache-listener")
    try:
        yield cache
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --- this process's own commits --------------------------------------------------------------
#
# The NOTIFY of a commit reaches this process's listener a moment after the commit, and a
# client may send its next request in that moment: revoked (RFC 7009: 200 means revoked) but
# still admitted. So a session that changed what the triggers watch empties this process's
# caches itself, right after its commit and before its response is sent. The tables and changes
# are the triggers' (migration 2026_12_06_0010); accounts count when deleted (erasure deletes
# their token families by cascade).
_CHANGED = "bank.auth_changed"
_WATCHED = {
    "oauth_clients": {"insert", "update", "delete"},
    "revoked_access_tokens": {"insert", "delete"},
    "token_families": {"update", "delete"},
    "accounts": {"delete"},
}


def _watched(table: str | None, change: str) -> bool:
    return table is not None and change in _WATCHED.get(table, ())


@event.listens_for(Session, "do_orm_execute")
def _note_statement(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    change = "insert" if state.is_insert else "update" if state.is_update else "delete"
    table = getattr(getattr(state.statement, "table", None), "name", None)
    if _watched(table, change):
        state.session.info[_CHANGED] = True


@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, _: UOWTransaction) -> None:
    for change, instances in (
        ("insert", session.new),
        ("update", session.dirty),
        ("delete", session.deleted),
    ):
        if any(_watched(getattr(i, "__tablename__", None), change) for i in instances):
            session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _forget_on_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        for cache in list(_PROCESS_CACHES):
            cache.invalidate()


@event.listens_for(Session, "after_rollback")
def _nothing_changed(session: Session) -> None:
    session.info.pop(_CHANGED, None)
