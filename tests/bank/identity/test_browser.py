"""The sign-in pages in a real headless Chromium (Debian's, driven by Playwright): sign-up,
verification by code, sign-in, and the app's code exchange, over real HTTP on loopback.

The bank runs under uvicorn; the "app" is a second tiny server on another port that records
the redirect it receives, so the browser really follows the 303 chain across origins (and the
page's CSP `form-action` must allow it).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import uvicorn
from authlib.integrations.httpx_client import AsyncOAuth2Client
from litestar import Litestar
from playwright.async_api import Browser, Page
from sqlalchemy.ext.asyncio import AsyncEngine

from bank.auth.clients import ClientRegistry, Registration
from bank.auth.models import ClientKind, ClientStatus
from tests.bank.identity.flows import PASSWORD, committed, mail_to, new_email, query_of


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def _uvicorn(app: Any, port: int) -> AsyncIterator[None]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


class CallbackRecorder:
    """The resident's app, as far as OAuth is concerned: it receives the redirect."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[str] = asyncio.Queue()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/callback":  # not the browser's /favicon.ico
            await self.received.put(scope["query_string"].decode())
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b"app received the code"})


def _contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two computed `rgb(...)` colours."""

    def luminance(colour: str) -> float:
        channels = [int(v) / 255 for v in colour[colour.index("(") + 1 : -1].split(",")[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


async def _colours(page: Page, selector: str) -> tuple[str, str]:
    colours: list[str] = await page.eval_on_selector(
        selector,
        "e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]",
    )
    return colours[0], colours[1]


async def test_sign_up_sign_in_and_code_exchange_in_chromium(
    committing_app: Litestar, engine: AsyncEngine, chromium: Browser
) -> None:
    bank_port, app_port = _free_port(), _free_port()
    bank_url = f"http://127.0.0.1:{bank_port}"
    redirect_uri = f"http://127.0.0.1:{app_port}/callback"

    async def register(session: Any) -> str:
        registry = ClientRegistry(session)
        client = await registry.register(
            Registration(
                kind=ClientKind.RESIDENT_APP,
                name="Sapporo Health app",
                scopes=("records:read", "account"),
                redirect_uris=(redirect_uri,),
            )
        )
        await registry.set_status(client.client_id, ClientStatus.ACTIVE)
        return client.client_id

    client_id = await committed(engine, register)
    recorder = CallbackRecorder()
    email = new_email()

    async with _uvicorn(committing_app, bank_port), _uvicorn(recorder, app_port):
        oauth = AsyncOAuth2Client(
            client_id=client_id,
            token_endpoint_auth_method="none",
            redirect_uri=redirect_uri,
            scope="records:read account",
            code_challenge_method="S256",
        )
        async with httpx2.AsyncClient() as http:
            metadata = (await http.get(f"{bank_url}/.well-known/oauth-authorization-server")).json()
        authorize = metadata["authorization_endpoint"].replace(
            metadata["issuer"], bank_url
        )  # the configured public URL is :8000; this test's server listens elsewhere

        # 1. Sign up from the app's authorization request, in Japanese.
        context = await chromium.new_context(locale="ja-JP")
        page = await context.new_page()
        verifier = secrets.token_urlsafe(48)
        url, state = oauth.create_authorization_url(authorize, code_verifier=verifier)
        await page.goto(url)
        assert await page.title() == "サインイン | さっぽろ市民情報銀行"
        await page.get_by_role("link", name="新規登録").click()
        await page.get_by_label("メールアドレス").fill(email)
        await page.get_by_label("パスワード").fill(PASSWORD)
        await page.get_by_role("button", name="登録して確認コードを受け取る").click()
        await page.wait_for_url("**/signup")
        code = (await mail_to(engine, committing_app, email, "verify_email")).payload["code"]
        await page.get_by_label("確認コード(6桁)").fill(code)
        await page.get_by_role("button", name="確認する").click()
        received = query_of("?" + await asyncio.wait_for(recorder.received.get(), 10))
        assert received["state"] == state
        assert "app received the code" in await page.content()

        token = await oauth.fetch_token(
            metadata["token_endpoint"].replace(metadata["issuer"], bank_url),
            code=received["code"],
            code_verifier=verifier,
        )
        assert token["refresh_token"]
        await context.close()

        # 2. Sign in again from a fresh browser, in English, using only the keyboard.
        context = await chromium.new_context(locale="en-GB")
        page = await context.new_page()
        verifier = secrets.token_urlsafe(48)
        url, state = oauth.create_authorization_url(authorize, code_verifier=verifier)
        await page.goto(url)
        assert await page.title() == "Sign in | Sapporo City Information Bank"
        assert await page.get_attribute("html", "lang") == "en"
        text, background = await _colours(page, "button")
        assert _contrast(text, background) >= 4.5
        text, background = await _colours(page, "body")
        assert _contrast(text, background) >= 4.5
        await page.get_by_label("Email address").focus()
        await page.keyboard.type(email)
        await page.keyboard.press("Tab")
        await page.keyboard.type(PASSWORD)
        await page.keyboard.press("Enter")
        received = query_of("?" + await asyncio.wait_for(recorder.received.get(), 10))
        assert received["state"] == state
        token = await oauth.fetch_token(
            metadata["token_endpoint"].replace(metadata["issuer"], bank_url),
            code=received["code"],
            code_verifier=verifier,
        )
        assert token["token_type"] == "Bearer"
        await context.close()
        await oauth.aclose()


async def test_wrong_password_in_chromium_shows_an_accessible_error(
    committing_app: Litestar, chromium: Browser
) -> None:
    port = _free_port()
    async with _uvicorn(committing_app, port):
        page = await chromium.new_page(locale="en-US")
        await page.goto(f"http://127.0.0.1:{port}/signin")
        await page.get_by_label("Email address").fill(new_email())
        await page.get_by_label("Password").fill("wrong password here")
        await page.get_by_role("button", name="Sign in").click()
        alert = page.get_by_role("alert")
        assert "The email address or password is wrong" in await alert.inner_text()
        described = await page.get_by_label("Password").get_attribute("aria-describedby")
        assert described == "form-error"
        await page.close()
