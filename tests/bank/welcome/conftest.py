"""A bank in development over real HTTP on loopback, with one demo resident and the demo app.

The app's public URL is the loopback address it is served at, so the redirects the demo app has
in development (the bank's callback page, Swagger UI's redirect page) are this server's own.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from bank.app import PACKAGES, create_app
from bank.db import Database, make_session_factory
from bank.demo.accounts import DemoApp, demo_app_redirects, ensure_demo_app
from bank.demo.seed import seed_city
from bank.settings import Settings
from tests.bank.browser import free_port, serving
from tests.bank.identity.flows import residents_erased_afterwards
from tests.conftest import serve

SEED = 2026


@dataclass(frozen=True)
class DevBank:
    url: str
    app: Litestar
    demo_app: DemoApp
    email: str  # the demo resident's, with the password the seed gave them
    password: str


@pytest.fixture
async def dev_bank(settings: Settings, engine: AsyncEngine) -> AsyncIterator[DevBank]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    dev = settings.model_copy(update={"environment": "development", "public_url": url})
    database = Database(sessions=make_session_factory(engine))
    demo = await ensure_demo_app(database, demo_app_redirects(dev))  # before the app starts
    app = create_app(dev, database=database)
    async with residents_erased_afterwards(engine, app), serve(app):
        summary = await seed_city(
            database, app.state.account_secrets, app.state.keystore, residents=1, days=3,
            seed=SEED, end=dev.local_today() - timedelta(days=1),
            zone=ZoneInfo(dev.local_timezone), packages=PACKAGES, sign_in_accounts=1,
        )  # fmt: skip
        ((email, password),) = summary.sign_in
        async with serving(app, port):
            yield DevBank(url, app, demo, email, password)


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def demo_authorize_url(bank: DevBank, challenge: str, *, scope: str, state: str) -> str:
    """The demo app's authorization request, its code to land on the bank's callback page."""
    query = httpx.QueryParams(
        response_type="code", client_id=bank.demo_app.client_id,
        redirect_uri=f"{bank.url}/dev/callback", scope=scope, state=state,
        code_challenge=challenge, code_challenge_method="S256",
    )  # fmt: skip
    return f"{bank.url}/oauth/authorize?{query}"


async def sign_in_and_follow(http: httpx.AsyncClient, authorize_url: str, bank: DevBank) -> str:
    """What a browser does with the authorization URL: sent to sign in, signs in as the demo
    resident, follows the redirects to the bank's callback page; returns that page's URL."""
    to_sign_in = await http.get(authorize_url)
    assert to_sign_in.status_code == 303, to_sign_in.text
    form = await http.get(str(to_sign_in.headers["location"]))
    match = _CSRF.search(form.text)
    assert match is not None
    return_to = re.search(r'name="return_to" value="([^"]+)"', form.text)
    assert return_to is not None
    signed_in = await http.post(
        f"{bank.url}/signin",
        data={
            "csrf": match.group(1),
            "return_to": html.unescape(return_to.group(1)),
            "email": bank.email,
            "password": bank.password,
        },
    )
    assert signed_in.status_code == 303, signed_in.text
    authorized = await http.get(str(signed_in.headers["location"]))
    assert authorized.status_code == 303, authorized.text
    return str(authorized.headers["location"])
