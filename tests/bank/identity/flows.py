"""Drive the sign-in pages like a browser would (forms, cookies, CSRF), and read the outbox."""

from __future__ import annotations

import contextlib
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, urlsplit

import httpx
from litestar import Litestar
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.crypto.keystore import KeyStore
from bank.crypto.providers import key_provider_from_settings
from bank.identity.models import Account
from bank.identity.outbox import Mail, unsent_mail
from bank.identity.protect import AccountSecrets, SealedUnder, normalise_email

T = TypeVar("T")
PASSWORD = "correct horse battery staple 7"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def new_email() -> str:
    return f"resident-{secrets.token_hex(6)}@example.jp"


def new_address() -> str:
    """A client address of the test's own (documentation range), so that throttle counters
    which committing tests leave behind never block another test or the next run."""
    return f"2001:db8:{secrets.token_hex(2)}::{secrets.token_hex(2)}"


@contextlib.asynccontextmanager
async def client_from(app: Litestar, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a running app (its lifespan started elsewhere) calling from `address`."""
    transport = httpx.ASGITransport(app=cast("Any", app), client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def committed(engine: AsyncEngine, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
        return await work(session)


async def csrf_of(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    match = _CSRF.search(page.text)
    assert match is not None, "the page has no CSRF field"
    return match.group(1)


async def post_form(
    client: httpx.AsyncClient, path: str, fields: dict[str, str], *, page: str = "/signin"
) -> httpx.Response:
    token = await csrf_of(client, page)
    return await client.post(path, data={"csrf": token, **fields})


def keyring_sealed_email(
    secrets_: AccountSecrets, account_id: uuid.UUID, email: str
) -> tuple[bytes, str]:
    """An address as the bank sealed every one before issue 12: under the master keyring, bound
    to the account id (bank.identity.protect still opens it so), and the column's value."""
    sealed = secrets_.seal(email.encode(), aad=f"email:{account_id}")
    return sealed, SealedUnder.KEYRING.value


async def mails_to(engine: AsyncEngine, app: Litestar, email: str) -> list[Mail]:
    """The unsent mail of the account with address `email`, oldest first, read as the sender
    reads it (tests stand in for the mail worker). Only that account's: mail that committing
    tests left in a reused database is sealed under data keys of that run's key directory."""
    secrets_ = app.state.account_secrets

    async def read(session: AsyncSession) -> list[Mail]:
        index = secrets_.email_index(normalise_email(email))
        account_id = await session.scalar(select(Account.id).where(Account.email_index == index))
        assert account_id is not None, "no account has the address"
        return await unsent_mail(session, secrets_, account_id=account_id)

    return await committed(engine, read)


async def mail_to(engine: AsyncEngine, app: Litestar, email: str, template: str) -> Mail:
    """The newest unsent mail of `template` to `email`."""
    found = await mails_to(engine, app, email)
    matching = [m for m in found if m.recipient == email and m.template == template]
    assert matching, f"no {template} mail to the address"
    return matching[-1]


async def sign_up_and_verify(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    app: Litestar,
    email: str,
    password: str = PASSWORD,
    return_to: str = "/account",
) -> httpx.Response:
    """Create a resident through the pages; returns the verification step's response."""
    response = await post_form(
        client, "/signup", {"email": email, "password": password, "return_to": return_to}
    )
    assert response.status_code == 200, response.text
    code = (await mail_to(engine, app, email, "verify_email")).payload["code"]
    return await post_form(
        client, "/signup/verify", {"email": email, "code": code, "return_to": return_to}
    )


def query_of(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


@contextlib.asynccontextmanager
async def residents_erased_afterwards(engine: AsyncEngine, app: Litestar) -> AsyncIterator[None]:
    """Delete, when the block ends, every resident account made during it, and their data
    keys. Sign-up makes a data key under this run's key directory (a temporary one): left in a
    reused or shared database, it would not unwrap for the tests that read every resident with
    a key (the vault's batch reader), nor in the next run."""
    since = await committed(engine, lambda s: s.scalar(select(func.now())))

    async def erase(session: AsyncSession) -> None:
        made = list(
            await session.scalars(
                select(Account.id).where(Account.kind == "resident", Account.created_at >= since)
            )
        )
        keys = KeyStore(key_provider_from_settings(app.state.settings))  # destroy: rows only
        for resident in made:
            await keys.destroy(session, resident)
        await session.execute(delete(Account).where(Account.id.in_(made)))
        # Their mail went with them (the outbox cascades); its delivery jobs go too.
        await session.execute(
            text(
                "DELETE FROM procrastinate_jobs WHERE task_name = 'identity:send_mail' "
                "AND status = 'todo' AND NOT EXISTS (SELECT 1 FROM email_outbox "
                "WHERE email_outbox.id::text = procrastinate_jobs.args->>'mail_id')"
            )
        )

    try:
        yield
    finally:
        await committed(engine, erase)
