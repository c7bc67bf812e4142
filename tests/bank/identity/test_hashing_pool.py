"""Password hashing runs in a bounded thread pool, never on the event loop: sign-up, sign-in and
reset each wait for the pool, and no verification runs on the loop's thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from bank.auth import passwords
from bank.auth.passwords import configure_hashing, hashing_limiter, verify_password
from tests.bank.identity.flows import (
    PASSWORD,
    client_from,
    mail_to,
    new_address,
    new_email,
    post_form,
    sign_up_and_verify,
)

Flow = Callable[
    [httpx.AsyncClient, AsyncEngine, Litestar, str], Coroutine[Any, Any, httpx.Response]
]


@pytest.fixture
def one_hashing_thread() -> Iterator[None]:
    configure_hashing(1)
    yield
    configure_hashing(None)


async def _sign_up(
    client: httpx.AsyncClient, engine: AsyncEngine, app: Litestar, email: str
) -> httpx.Response:
    return await post_form(client, "/signup", {"email": email, "password": PASSWORD})


async def _sign_in(
    client: httpx.AsyncClient, engine: AsyncEngine, app: Litestar, email: str
) -> httpx.Response:
    return await post_form(client, "/signin", {"email": email, "password": PASSWORD})


async def _reset(
    client: httpx.AsyncClient, engine: AsyncEngine, app: Litestar, email: str
) -> httpx.Response:
    code = (await mail_to(engine, app, email, "reset_password")).payload["code"]
    fields = {"email": email, "code": code, "password": "another fine passphrase 9"}
    return await post_form(client, "/reset/confirm", fields, page="/reset")


@pytest.mark.parametrize(
    ("flow", "status"),
    [(_sign_up, 200), (_sign_in, 303), (_reset, 200)],
    ids=["sign-up", "sign-in", "reset"],
)
async def test_every_password_flow_waits_for_the_hashing_pool(
    committing_client: httpx.AsyncClient,
    committing_app: Litestar,
    engine: AsyncEngine,
    one_hashing_thread: None,
    flow: Flow,
    status: int,
) -> None:
    email = new_email()
    async with client_from(committing_app, new_address()) as client:
        if flow is not _sign_up:
            await sign_up_and_verify(client, engine, committing_app, email)
            client.cookies.clear()
            await post_form(client, "/reset", {"email": email}, page="/reset")
        limiter = hashing_limiter()
        async with limiter:  # the test holds the pool's only thread
            request = asyncio.create_task(flow(client, engine, committing_app, email))
            await asyncio.sleep(0.5)
            # Still waiting: the request's hash goes through the pool, not the event loop.
            assert not request.done()
            assert limiter.statistics().tasks_waiting == 1
        response = await request
    assert response.status_code == status, response.text


async def test_sign_ins_hash_off_the_loop_at_most_n_at_once(
    committing_client: httpx.AsyncClient,
    committing_app: Litestar,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    email = new_email()
    async with client_from(committing_app, new_address()) as client:
        await sign_up_and_verify(client, engine, committing_app, email)
        client.cookies.clear()
        await _sign_ins_off_the_loop(client, engine, committing_app, email, monkeypatch)


async def _sign_ins_off_the_loop(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    app: Litestar,
    email: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Which thread each verification ran on is a fact; how long the loop stalled would be a
    # timing, which benchmarks/oauth_tokens.py measures instead (its loop probe).
    threads: set[int] = set()

    def recorded(stored_hash: str, password: str) -> bool:
        threads.add(threading.get_ident())
        return verify_password(stored_hash, password)

    monkeypatch.setattr(passwords, "verify_password", recorded)
    configure_hashing(2)
    in_pool: list[int] = []
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            await asyncio.sleep(0.002)
            in_pool.append(hashing_limiter().borrowed_tokens)

    watcher = asyncio.create_task(watch())
    try:
        signed_in = await asyncio.gather(*(_sign_in(client, engine, app, email) for _ in range(6)))
    finally:
        done.set()
        await watcher
        configure_hashing(None)
    assert [response.status_code for response in signed_in] == [303] * 6
    assert max(in_pool) == 2  # six sign-ins, never more than two hashes at once
    assert threads  # the verifications ran, each on a worker thread...
    assert threading.get_ident() not in threads  # ...never on the event loop's
