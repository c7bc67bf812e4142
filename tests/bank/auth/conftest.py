from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar, get

from bank.auth.guards import CurrentPrincipal, requires
from bank.auth.principals import PrincipalType
from tests.conftest import serve


@get("/v1/test/partner-data", guards=[requires(PrincipalType.PARTNER, "partner:data")])
async def partner_data(principal: CurrentPrincipal) -> dict[str, str]:
    return {"client_id": principal.client_id, "type": principal.type.value}


@get("/v1/test/me", guards=[requires(PrincipalType.RESIDENT, "records:read")])
async def resident_data(principal: CurrentPrincipal) -> dict[str, str]:
    return {"subject": principal.subject}


@pytest.fixture
async def api(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app with two protected test routes: one for partners, one for residents."""
    for handler in (partner_data, resident_data):
        app.register(handler)
    async with serve(app) as client:
        yield client
