"""The welcome pages' SQL: which apps may be redirected to a URI."""

from __future__ import annotations

from sqlalchemy import any_, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.models import ClientStatus, OAuthClient


async def clients_redirecting_to(session: AsyncSession, uri: str) -> list[str]:
    """The active clients that registered `uri` as a redirect, oldest first."""
    found = await session.scalars(
        select(OAuthClient.client_id)
        .where(
            literal(uri) == any_(OAuthClient.redirect_uris),
            OAuthClient.status == ClientStatus.ACTIVE.value,
        )
        .order_by(OAuthClient.created_at)
    )
    return list(found)
