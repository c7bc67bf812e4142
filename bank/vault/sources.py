"""What data sources push (transit operators' taps, insurers' checkups), for the client pushing.

A source pushes only for what it feeds (its registration's operators or insurers, kept by the
client registry); the kind modules validate, route and store each item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.clients import ClientRegistry
from bank.crypto.keystore import KeyStore
from bank.vault import checkups, transit
from bank.vault.records import ItemResult
from bank.vault.rules.checkups import CheckupIn
from bank.vault.rules.transit import TapIn


class SourcePushes:
    def __init__(
        self,
        session: AsyncSession,
        keys: KeyStore,
        *,
        zone: ZoneInfo,
        now: Callable[[], datetime],
        today: Callable[[], date],
    ) -> None:
        self._session = session
        self._keys = keys
        self._zone = zone
        self._now = now
        self._today = today

    async def taps(self, client_id: str, taps: Sequence[TapIn]) -> list[ItemResult]:
        """Each tap's outcome, by index; nothing is stored for a refused one."""
        return await transit.ingest_taps(
            self._session, self._keys, client_id=client_id,
            feeds=await ClientRegistry(self._session).feeds(client_id), taps=taps,
            now=self._now(), zone=self._zone,
        )  # fmt: skip

    async def checkups(
        self, client_id: str, pushed: Sequence[tuple[str, CheckupIn]]
    ) -> list[ItemResult]:
        """Each (insurer number, checkup)'s outcome, by index."""
        return await checkups.ingest_checkups(
            self._session, self._keys, client_id=client_id,
            feeds=await ClientRegistry(self._session).feeds(client_id), checkups=pushed,
            today=self._today(),
        )  # fmt: skip
