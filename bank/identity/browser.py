"""The sign-in pages' browser session and CSRF cookies.

The session cookie holds a random id; the database keeps only its hash, so a leaked table
signs no one in. CSRF uses the double-submit pattern: a random cookie (SameSite=Strict) that
every form echoes in a hidden field; a cross-site form can set neither.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.tokens import hash_token, new_token
from bank.identity.models import Account, BrowserSession

SESSION_LIFETIME = timedelta(hours=8)


@dataclass(frozen=True)
class CookieNames:
    """`__Host-` cookies (Secure, no Domain, Path=/) over HTTPS; plain names on loopback HTTP."""

    session: str
    csrf: str

    @classmethod
    def for_url(cls, public_url: str) -> CookieNames:
        if public_url.startswith("https://"):
            return cls(session="__Host-bank_session", csrf="__Host-bank_csrf")
        return cls(session="bank_session", csrf="bank_csrf")


@dataclass(frozen=True)
class SignedIn:
    session_hash: str
    account: Account
    second_factor: bool


async def current_session(db: AsyncSession, cookie: str | None) -> SignedIn | None:
    if not cookie or len(cookie) > 128:
        return None
    row = (
        await db.execute(
            select(BrowserSession, Account)
            .join(Account, Account.id == BrowserSession.account_id)
            .where(
                BrowserSession.id_hash == hash_token(cookie),
                BrowserSession.revoked_at.is_(None),
                BrowserSession.expires_at > datetime.now(UTC),
                Account.status == "active",
            )
        )
    ).one_or_none()
    if row is None:
        return None
    browser_session, account = row
    return SignedIn(
        session_hash=browser_session.id_hash,
        account=account,
        second_factor=browser_session.second_factor_at is not None,
    )


async def start_session(db: AsyncSession, account_id: uuid.UUID) -> str:
    """A new session for a freshly authenticated account; returns the cookie value."""
    cookie = new_token()
    db.add(
        BrowserSession(
            id_hash=hash_token(cookie),
            account_id=account_id,
            expires_at=datetime.now(UTC) + SESSION_LIFETIME,
        )
    )
    await db.flush()
    return cookie


async def confirm_second_factor(db: AsyncSession, session_hash: str) -> None:
    await db.execute(
        update(BrowserSession)
        .where(BrowserSession.id_hash == session_hash)
        .values(second_factor_at=datetime.now(UTC))
    )


async def end_session(db: AsyncSession, cookie: str | None) -> None:
    if cookie:
        await db.execute(
            update(BrowserSession)
            .where(BrowserSession.id_hash == hash_token(cookie))
            .values(revoked_at=datetime.now(UTC))
        )


async def end_other_sessions(
    db: AsyncSession, account_id: uuid.UUID, *, keep_hash: str | None = None
) -> int:
    """End every signed-in browser of the account (but `keep_hash`'s): sign out everywhere, or
    after a password change; how many ended."""
    statement = update(BrowserSession).where(
        BrowserSession.account_id == account_id, BrowserSession.revoked_at.is_(None)
    )
    if keep_hash is not None:
        statement = statement.where(BrowserSession.id_hash != keep_hash)
    result = await db.execute(statement.values(revoked_at=datetime.now(UTC)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def new_csrf_token() -> str:
    return new_token(24)


def csrf_matches(cookie: str | None, field: str | None) -> bool:
    return bool(cookie and field) and hmac.compare_digest(str(cookie), str(field))
