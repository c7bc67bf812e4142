"""Password reset codes cannot be guessed round after round: at most CODES_PER_WINDOW codes per
account in 24 hours, and one address may ask for or mistype codes only so often. The cap is a
window, not a lock: a day later the owner resets as usual.

Requests commit for real (throttles and code attempts are written in their own transactions);
every test uses client addresses of its own, as the counters outlive the test.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.identity.accounts import CODE_ATTEMPTS, CODES_PER_WINDOW
from bank.identity.models import Account, OneTimeCode
from bank.identity.throttle import ADDRESS_LIMIT
from tests.bank.identity.flows import (
    client_from,
    committed,
    mails_to,
    new_address,
    new_email,
    post_form,
    sign_up_and_verify,
)

NEW_PASSWORD = "a fresh start passphrase 42"
Connect = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def from_address(committing_client: httpx.AsyncClient, committing_app: Litestar) -> Connect:
    """Clients of the running app (`committing_client` started it), each from one address."""
    return lambda address: client_from(committing_app, address)


async def _reset_codes(engine: AsyncEngine, app: Litestar, email: str) -> list[str]:
    """Every reset code mailed to `email`, oldest first (the test reads the mailbox)."""
    mails = await mails_to(engine, app, email)
    return [
        m.payload["code"] for m in mails if m.recipient == email and m.template == "reset_password"
    ]


async def _ask(client: httpx.AsyncClient, email: str) -> None:
    response = await post_form(client, "/reset", {"email": email}, page="/reset")
    assert response.status_code == 200, response.text


async def _confirm(client: httpx.AsyncClient, email: str, code: str) -> int:
    fields = {"email": email, "code": code, "password": NEW_PASSWORD}
    response = await post_form(client, "/reset/confirm", fields, page="/reset")
    return response.status_code


def _wrong(codes: list[str], count: int) -> list[str]:
    guesses = (f"{n:06d}" for n in range(10**6))
    return [guess for guess in guesses if guess not in codes][:count]


async def _a_resident(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, app: Litestar
) -> str:
    email = new_email()
    await sign_up_and_verify(committing_client, engine, app, email)
    return email


async def test_an_attacker_cannot_keep_guessing_reset_codes_round_after_round(
    committing_client: httpx.AsyncClient,
    committing_app: Litestar,
    engine: AsyncEngine,
    from_address: Connect,
) -> None:
    email = await _a_resident(committing_client, engine, committing_app)
    checked = 0
    for _ in range(CODES_PER_WINDOW + 3):
        # A new address every round, as a botnet would: only the account's cap can stop it.
        async with from_address(new_address()) as attacker:
            await _ask(attacker, email)
            mailed = await _reset_codes(engine, committing_app, email)
            for guess in _wrong(mailed, CODE_ATTEMPTS):
                assert await _confirm(attacker, email, guess) == 400
                checked += 1
    mailed = await _reset_codes(engine, committing_app, email)
    assert len(mailed) == CODES_PER_WINDOW  # rounds beyond the cap mailed nothing
    # Guessing has stopped: the last code's attempts are spent and no new code exists, so even
    # the right code (which an attacker might have hit in a later round) is refused.
    async with from_address(new_address()) as attacker:
        assert await _confirm(attacker, email, mailed[-1]) == 400
        await _ask(attacker, email)
    assert len(await _reset_codes(engine, committing_app, email)) == CODES_PER_WINDOW
    assert checked == (CODES_PER_WINDOW + 3) * CODE_ATTEMPTS  # every guess answered the same

    # A window, not a lock: once a day has passed the owner gets a code and resets.
    index = committing_app.state.account_secrets.email_index(email)

    async def a_day_passes(session: AsyncSession) -> None:
        account = select(Account.id).where(Account.email_index == index).scalar_subquery()
        await session.execute(
            update(OneTimeCode)
            .where(OneTimeCode.account_id == account)
            .values(expires_at=OneTimeCode.expires_at - timedelta(hours=24, minutes=1))
        )

    await committed(engine, a_day_passes)
    async with from_address(new_address()) as owner:
        await _ask(owner, email)
        fresh = await _reset_codes(engine, committing_app, email)
        assert len(fresh) == CODES_PER_WINDOW + 1
        assert await _confirm(owner, email, fresh[-1]) == 200


async def test_one_address_cannot_spray_guesses_then_it_waits(
    committing_client: httpx.AsyncClient,
    committing_app: Litestar,
    engine: AsyncEngine,
    from_address: Connect,
) -> None:
    email = await _a_resident(committing_client, engine, committing_app)
    async with from_address(new_address()) as owner:
        await _ask(owner, email)
    (code,) = await _reset_codes(engine, committing_app, email)

    async with from_address(new_address()) as sprayer:
        # Wrong codes at many addresses' accounts (or none): each counts against this address.
        for _ in range(ADDRESS_LIMIT):
            assert await _confirm(sprayer, new_email(), "123456") == 400
        # Blocked: the right code is refused unchecked (its attempts are not spent), and asking
        # for codes from here mails nothing.
        assert await _confirm(sprayer, email, code) == 400
        await _ask(sprayer, email)
    assert await _reset_codes(engine, committing_app, email) == [code]

    async with from_address(new_address()) as owner:
        assert await _confirm(owner, email, code) == 200
