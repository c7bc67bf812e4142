"""Every server-rendered page says `text/html; charset=utf-8` once: a media type that already
carried the charset got a second one from Litestar (`text/html; charset=utf-8; charset=utf-8`),
which strict clients and proxies may refuse."""

from __future__ import annotations

import httpx
import pytest

PAGES = ("/", "/signin", "/signup", "/reset", "/problems/", "/problems/account-gone")


@pytest.mark.parametrize("path", PAGES)
async def test_a_page_names_its_charset_once(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
