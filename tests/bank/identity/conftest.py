"""Identity tests call from an address of their own: throttle counters that committing tests
leave behind (per address, for 15 minutes) must not block the next test or the next run. The
residents they sign up are deleted afterwards with their data keys
(flows.residents_erased_afterwards)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.bank.identity.flows import client_from, new_address, residents_erased_afterwards
from tests.conftest import serve


@pytest.fixture
async def committing_app(committing_app: Litestar, engine: AsyncEngine) -> AsyncIterator[Litestar]:
    async with residents_erased_afterwards(engine, committing_app):
        yield committing_app


@pytest.fixture
async def committing_client(committing_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(committing_app), client_from(committing_app, new_address()) as client:
        yield client
