"""One request = one database session, committed before a success status is sent.

The commit happens when the response starts, so the status is known (a handler that returns a
4xx/5xx response without raising still rolls back). If the commit fails, the success response is
never sent: the client gets a 500 (or 503 when the database is unreachable) problem instead, so an
acknowledged write is always a committed one.

advanced-alchemy's `autocommit` before-send handler is not used because it logs a failed commit at
debug level and sends the 2xx anyway.
"""

from __future__ import annotations

from typing import TypeAlias, cast

import msgspec
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncSession

from bank.db import Database
from bank.http.context import mark_request_start, request_id, route_template
from bank.http.language import language_of
from bank.http.problems import (
    PROBLEM_MEDIA_TYPE,
    Problem,
    internal_error_body,
    is_unavailable,
    unavailable_body,
)
from bank.logs import get_logger, safe_traceback

_SESSION_KEY = "bank.db_session"

# Handlers declare `db_session: DbSession` to receive the request's session.
DbSession: TypeAlias = NamedDependency[AsyncSession]

log = get_logger("bank.db")


async def provide_db_session(scope: Scope) -> AsyncSession:
    """Dependency: the request's session, created on first use and settled by the middleware."""
    state = scope["state"]
    session = cast("AsyncSession | None", state.get(_SESSION_KEY))
    if session is None:
        database: Database = scope["litestar_app"].state.database
        session = database.sessions()
        state[_SESSION_KEY] = session
    return session


def _is_success(status: int) -> bool:
    # Redirects count as success: the authorization endpoint answers 303 with a code it saved.
    return 200 <= status < 400


async def _send_problem(send: Send, body: Problem, extra: dict[str, str]) -> None:
    payload = msgspec.json.encode(body)
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(payload)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in extra.items()),
    ]
    await send({"type": "http.response.start", "status": body.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


def transaction_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        mark_request_start(scope)
        replaced = False

        async def settle_then_send(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the original response was replaced by a problem; drop its body
            if message["type"] == "http.response.start":
                session: AsyncSession | None = scope["state"].pop(_SESSION_KEY, None)
                if session is not None:
                    failure = await _settle(session, message["status"], scope)
                    if failure is not None:
                        replaced = True
                        await _send_problem(send, *failure)
                        return
            await send(message)

        try:
            await app(scope, receive, settle_then_send)
        finally:
            leftover: AsyncSession | None = scope["state"].pop(_SESSION_KEY, None)
            if leftover is not None:
                await leftover.close()  # no response was started: closing rolls back

    return middleware


async def _settle(
    session: AsyncSession, status: int, scope: Scope
) -> tuple[Problem, dict[str, str]] | None:
    """Commit on success, roll back otherwise; return the problem to send if the commit failed."""
    if not session.in_transaction():
        # Never used (or used only outside a transaction): nothing to settle. A session with
        # pending objects is in a transaction from its first `add`, so this never drops a write.
        await session.close()
        return None
    try:
        if _is_success(status):
            await session.commit()
        else:
            await session.rollback()
    except Exception as exc:  # noqa: BLE001 - any commit failure must turn into an error response
        rid = request_id(scope)
        log.error(
            "db.commit_failed",
            request_id=rid,
            route=route_template(scope),
            error_type=type(exc).__qualname__,
            stack=safe_traceback(exc),
        )
        language = language_of(scope)
        if is_unavailable(exc):
            return unavailable_body(rid, language), {"Retry-After": "5"}
        return internal_error_body(rid, language), {}
    finally:
        await session.close()
    return None
