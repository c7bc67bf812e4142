"""The welcome pages' SQL: which apps may be redirected to a URI."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.models import ClientKind, ClientStatus, OAuthClient
from bank.auth.redirects import redirect_uri_matches

_PUBLIC_CLIENTS = (ClientKind.RESIDENT_APP.value, ClientKind.OPERATOR_CONSOLE.value)


async def clients_redirecting_to(session: AsyncSession, uri: str) -> list[str]:
    """The active apps and consoles a registered redirect of which admits `uri` (itself, or a
    loopback one on another port), oldest first."""
    found = await session.execute(
        select(OAuthClient.client_id, OAuthClient.redirect_uris)
        .where(
            OAuthClient.kind.in_(_PUBLIC_CLIENTS),
            OAuthClient.status == ClientStatus.ACTIVE.value,
        )
        .order_by(OAuthClient.created_at)
    )
    return [
        client_id
        for client_id, registered in found
        if any(redirect_uri_matches(known, uri) for known in registered)
    ]
