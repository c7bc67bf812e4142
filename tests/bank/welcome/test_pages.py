"""The landing page everywhere, and the development pages only in development: in any other
environment they are the ordinary 404 and the landing page shows no demo."""

from __future__ import annotations

import httpx
import pytest

from tests.bank.welcome.conftest import DevBank


@pytest.mark.parametrize("path", ["/dev/callback?code=abc", "/dev/mail"])
async def test_the_development_pages_are_not_found_elsewhere(
    client: httpx.AsyncClient, path: str
) -> None:
    answer = await client.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")


async def test_the_landing_page_shows_no_demo_outside_development(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src" not in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert "Welcome to the Sapporo City Information Bank" in page.text
    assert 'href="/docs"' in page.text
    assert "Demo (development)" not in page.text
    assert "/dev/mail" not in page.text


async def test_the_callback_page_repeats_no_markup_and_no_shell(dev_bank: DevBank) -> None:
    """What a crafted link puts in the query is shown escaped, and the command the page offers
    carries the code URL-encoded: pasting it runs nothing but curl."""
    async with httpx.AsyncClient(base_url=dev_bank.url) as http:
        page = await http.get(
            "/dev/callback",
            params={"code": "$(touch /tmp/x)<b>", "state": "<script>", "lang": "en"},
        )
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "<b>" not in page.text
    assert "-d code=%24%28touch%20/tmp/x%29%3Cb%3E" in page.text


async def test_an_error_from_the_authorization_server_is_shown_without_a_command(
    dev_bank: DevBank,
) -> None:
    async with httpx.AsyncClient(base_url=dev_bank.url) as http:
        page = await http.get(
            "/dev/callback",
            params={"error": "access_denied", "error_description": "no", "lang": "en"},
        )
    assert "The authorization did not complete" in page.text
    assert "access_denied" in page.text
    assert "token-curl" not in page.text
