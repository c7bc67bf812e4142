"""Cost of issuing and of checking access tokens, each beside a Litestar endpoint that does nothing.

Two figures from one run, every app driven in-process through the ASGI interface (no sockets),
one request at a time, as benchmarks/http_overhead.py does:

1. Token endpoint throughput. POST /oauth/token with `grant_type=client_credentials` and an ES256
   `private_key_jwt` client assertion (a fresh `jti` each time) for an active partner registered
   in a real, migrated PostgreSQL database. Each request reads the client, records the `jti`
   (its own commit), verifies the assertion, signs an access token and commits. Assertions are
   signed before the timed loop, so the figure is the server's cost, not the client's. Baseline:
   a bare Litestar POST endpoint, sent the same form bodies.
2. Resource-server validation cost. GET on a route of the bank app behind
   `requires(PrincipalType.PARTNER, "partner:data")` with one valid access token, beside an
   unguarded route of the same app sent the same headers: the difference is the guard (JWT
   checks plus the revocation query and its transaction).

3. Sign-ins. Residents signing in on the bank's own page as a browser does (GET /signin for
   the CSRF field, POST the form: one argon2id verification), SIGNIN_CONCURRENCY at a time,
   while a probe GETs /health/live every few milliseconds: with password hashing in its bounded
   thread pool, the probe's p99 during sign-ins stays near its p99 without them.

Database: as benchmarks/support.py's `scratch_database` describes (on a BANK_DATABASE_URL
database the partner client is deleted afterwards). Prints one JSON line, last.

    python benchmarks/oauth_tokens.py [--quick]
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's directory is on sys.path but the repository root (for
# `benchmarks.support`) is not.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

import argparse
import asyncio
import json
import logging
import re
import secrets
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey
from litestar import Litestar, get, post
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.app import create_app
from bank.auth.clients import Certification, ClientRegistry, Registration
from bank.auth.controllers import TOKEN_PATH
from bank.auth.guards import requires
from bank.auth.models import ClientKind, ClientStatus, OAuthClient, UsedAssertion
from bank.auth.principals import PrincipalType
from bank.auth.tokens import mint_access_token
from bank.db import make_session_factory
from bank.identity.accounts import create_account
from bank.settings import Settings
from benchmarks.support import (
    asgi_client,
    bench_settings,
    checked,
    median_ms,
    migrated_engine,
    ms,
    percentile,
    rate,
    reused_database,
    scratch_database,
    timed_gets,
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_TARGET = 0.10
VALIDATION_TARGET = 0.30
SIGNIN_CONCURRENCY = 4
PROBE_INTERVAL_S = 0.005
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CORPORATE_NUMBER = "7000012050002"  # 国税庁's own 法人番号: a valid check digit
PROTECTED_PATH = "/bench/protected"
OPEN_PATH = "/bench/open"


@post(TOKEN_PATH, status_code=200, sync_to_thread=False)
def bare_post() -> dict[str, str]:
    return {"status": "ok"}


# The two routes added to the bank app differ only by the guard, so their difference is its cost.
@get(OPEN_PATH, sync_to_thread=False)
def open_route() -> dict[str, str]:
    return {"status": "ok"}


@get(
    PROTECTED_PATH,
    guards=[requires(PrincipalType.PARTNER, "partner:data")],
    sync_to_thread=False,
)
def protected_route() -> dict[str, str]:
    return {"status": "ok"}


async def _register_partner(engine: AsyncEngine) -> tuple[str, ECKey]:
    """An active partner client with one ES256 public key, committed so the app can see it."""
    key = ECKey.generate_key("P-256", parameters={"kid": secrets.token_hex(4)})
    async with make_session_factory(engine)() as session:
        registry = ClientRegistry(session)
        client = await registry.register(
            Registration(
                kind=ClientKind.PARTNER,
                name="Benchmark Wellness KK",
                scopes=("partner:data",),
                corporate_number=CORPORATE_NUMBER,
                contact_email="bench@wellness.example.jp",
                certifications=(
                    Certification(name="Pマーク", number="17000123", expires_on=date(2099, 3, 31)),
                ),
                jwks={"keys": [dict(key.as_dict(private=False))]},
            )
        )
        await registry.set_status(client.client_id, ClientStatus.ACTIVE)
        await session.commit()
        return client.client_id, key


async def _forget_partner(engine: AsyncEngine, client_id: str) -> None:
    """On a database we did not create, leave nothing of ours behind but the signing key."""
    async with engine.begin() as connection:
        await connection.execute(delete(UsedAssertion).where(UsedAssertion.client_id == client_id))
        await connection.execute(delete(OAuthClient).where(OAuthClient.client_id == client_id))


def _token_forms(client_id: str, key: ECKey, audience: str, count: int) -> list[dict[str, str]]:
    now = int(time.time())
    forms = []
    for _ in range(count):
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": now,
            # Long enough to outlast the full run; the server refuses more than 300 s (+ skew).
            "exp": now + 290,
            "jti": secrets.token_urlsafe(16),
        }
        assertion = jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])
        forms.append(
            {
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion,
            }
        )
    return forms


async def _post_forms(
    client: httpx.AsyncClient, forms: list[dict[str, str]]
) -> tuple[list[float], httpx.Response]:
    timings: list[float] = []
    response: httpx.Response | None = None
    for form in forms:
        started = time.perf_counter()
        response = await client.post(TOKEN_PATH, data=form)
        timings.append(time.perf_counter() - started)
        checked(response)
    assert response is not None, "no forms to post"
    return timings, response


async def _add_signin_residents(app: Litestar, engine: AsyncEngine) -> list[tuple[str, str]]:
    """Residents with verified addresses and passwords, committed; their (email, password)."""
    credentials = []
    async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
        for n in range(SIGNIN_CONCURRENCY):
            email = f"bench-{secrets.token_hex(6)}@example.jp"
            password = f"a long bench passphrase {n} {secrets.token_hex(4)}"
            await create_account(
                session, app.state.account_secrets, kind="resident", email=email,
                password=password, verified_at=datetime.now(UTC),
            )  # fmt: skip
            credentials.append((email, password))
    return credentials


async def _sign_in(client: httpx.AsyncClient, email: str, password: str) -> float:
    client.cookies.clear()  # a new browser each time: no session to reuse
    started = time.perf_counter()
    page = checked(await client.get("/signin"))
    csrf = _CSRF.search(page.text)
    assert csrf is not None, "the sign-in page has no CSRF field"
    form = {"csrf": csrf.group(1), "email": email, "password": password, "return_to": "/account"}
    response = await client.post("/signin", data=form)
    if response.status_code != 303:
        raise SystemExit(f"POST /signin: unexpected status {response.status_code}")
    return time.perf_counter() - started


async def _probe(client: httpx.AsyncClient, stop: asyncio.Event) -> list[float]:
    """GET /health/live every PROBE_INTERVAL_S until `stop`: how long the loop makes it wait."""
    timings: list[float] = []
    while not stop.is_set():
        started = time.perf_counter()
        checked(await client.get("/health/live"))
        timings.append(time.perf_counter() - started)
        await asyncio.sleep(PROBE_INTERVAL_S)
    return timings


async def _measure_signins(
    app: Litestar, engine: AsyncEngine, bank: httpx.AsyncClient, signins: int
) -> dict[str, Any]:
    credentials = await _add_signin_residents(app, engine)
    clients = [asgi_client(app) for _ in credentials]
    stop = asyncio.Event()
    idle = asyncio.create_task(_probe(bank, stop))
    await asyncio.sleep(1.0)
    stop.set()
    idle_timings = await idle

    async def resident(client: httpx.AsyncClient, email: str, password: str) -> list[float]:
        return [await _sign_in(client, email, password) for _ in range(signins)]

    for client, (email, password) in zip(clients, credentials, strict=True):
        await _sign_in(client, email, password)  # warm-up
    stop = asyncio.Event()
    busy = asyncio.create_task(_probe(bank, stop))
    started = time.perf_counter()
    per_resident = await asyncio.gather(
        *(resident(c, e, p) for c, (e, p) in zip(clients, credentials, strict=True))
    )
    elapsed = time.perf_counter() - started
    stop.set()
    busy_timings = await busy
    for client in clients:
        await client.aclose()
    timings = [t for one in per_resident for t in one]
    return {
        "signins": len(timings),
        "signin_concurrency": SIGNIN_CONCURRENCY,
        "signins_per_second": round(len(timings) / elapsed, 1),
        "signin_p50_ms": median_ms(timings),
        "signin_p99_ms": ms(percentile(timings, 0.99)),
        "probe_p99_ms_during_signins": ms(percentile(busy_timings, 0.99)),
        "probe_p99_ms_idle": ms(percentile(idle_timings, 0.99)),
    }


async def _fresh_tokens(app: Litestar, settings: Settings, client_id: str, count: int) -> list[str]:
    """Tokens the guard has never seen, as the token endpoint would mint them."""
    key = await app.state.signing_keys.active()
    now = int(time.time())
    return [
        mint_access_token(
            key, issuer=settings.public_url, principal_type=PrincipalType.PARTNER,
            subject=client_id, client_id=client_id, scopes=["partner:data"], now=now,
            ttl_s=settings.access_token_ttl_s,
        )[0]
        for _ in range(count)
    ]  # fmt: skip


async def _measure(
    settings: Settings, token_requests: int, validation_requests: int, signins: int
) -> dict[str, Any]:
    cold_requests = validation_requests // 4
    bank_app = create_app(settings)
    bank_app.register(open_route)
    bank_app.register(protected_route)
    logging.disable(logging.CRITICAL)  # measure the stack, not the terminal
    bare_app = Litestar(route_handlers=[bare_post], logging_config=None)

    engine = await migrated_engine(settings)
    client_id, key = await _register_partner(engine)
    audience = f"{settings.public_url}{TOKEN_PATH}"
    token_warmup = min(50, token_requests)
    validation_warmup = min(200, validation_requests)
    try:
        async with (
            bank_app.lifespan(),
            bare_app.lifespan(),
            asgi_client(bank_app) as bank,
            asgi_client(bare_app) as bare,
        ):
            # Warm-up: the first token request also creates the signing key on a new database.
            _, response = await _post_forms(
                bank, _token_forms(client_id, key, audience, token_warmup)
            )
            await _post_forms(bare, _token_forms(client_id, key, audience, token_warmup))
            # Signed up front: the timed loop measures the server, not the client's signing.
            forms = _token_forms(client_id, key, audience, token_requests)
            bare_timings, _ = await _post_forms(bare, forms)
            token_timings, response = await _post_forms(bank, forms)

            headers = [{"Authorization": f"Bearer {response.json()['access_token']}"}]
            for path in (OPEN_PATH, PROTECTED_PATH):
                await timed_gets(bank, path, headers, validation_warmup)
            open_timings = await timed_gets(bank, OPEN_PATH, headers, validation_requests)
            protected_timings = await timed_gets(bank, PROTECTED_PATH, headers, validation_requests)
            # First use of each token: its signature checked, its standing read from the database.
            fresh = [
                {"Authorization": f"Bearer {token}"}
                for token in await _fresh_tokens(bank_app, settings, client_id, cold_requests)
            ]
            cold_timings = await timed_gets(bank, PROTECTED_PATH, fresh, cold_requests)
            signin_figures = await _measure_signins(bank_app, engine, bank, signins)
    finally:
        if reused_database():
            await _forget_partner(engine, client_id)
        await engine.dispose()

    token_rps = rate(token_timings)
    bare_rps = rate(bare_timings)
    protected_rps = rate(protected_timings)
    open_rps = rate(open_timings)
    return {
        "name": "oauth_tokens",
        "metric": "tokens_per_second",
        "value": round(token_rps, 1),
        "unit": "tokens/s",
        "baseline": round(bare_rps, 1),
        "ratio": round(token_rps / bare_rps, 4),
        # Keycloak's sizing allots a vCPU per 120 client-credential grants/s; the issue asks for
        # a tenth of a do-nothing endpoint's rate, and 0.30 for the validated route.
        "target": TOKEN_TARGET,
        "requests": token_requests,
        "p50_ms": median_ms(token_timings),
        "p99_ms": ms(percentile(token_timings, 0.99)),
        "baseline_p50_ms": median_ms(bare_timings),
        "baseline_p99_ms": ms(percentile(bare_timings, 0.99)),
        "validation_requests": validation_requests,
        "validation_rps": round(protected_rps, 1),
        "validation_baseline_rps": round(open_rps, 1),
        "validation_ratio": round(protected_rps / open_rps, 3),
        "validation_target": VALIDATION_TARGET,
        "validation_p50_ms": median_ms(protected_timings),
        "validation_p99_ms": ms(percentile(protected_timings, 0.99)),
        "validation_baseline_p50_ms": median_ms(open_timings),
        # Each token's first request (no cached verification or standing), against the same
        # baseline: what a client using a token once pays.
        "validation_first_use_rps": round(rate(cold_timings), 1),
        "validation_first_use_ratio": round(rate(cold_timings) / open_rps, 3),
        "validation_first_use_p50_ms": median_ms(cold_timings),
        "validation_first_use_p99_ms": ms(percentile(cold_timings, 0.99)),
        "validation_added_us_p50": round(
            (statistics.median(protected_timings) - statistics.median(open_timings)) * 1e6, 1
        ),
        **signin_figures,
    }


async def main(quick: bool) -> dict[str, Any]:
    token_requests = 300 if quick else 3_000
    validation_requests = 2_000 if quick else 20_000
    signins = 5 if quick else 25  # per resident
    with tempfile.TemporaryDirectory(prefix="bench-token-") as scratch:
        async with scratch_database(Path(scratch), "bench_token") as (url, origin):
            settings = bench_settings(url, origin, Path(scratch))
            figures = await _measure(settings, token_requests, validation_requests, signins)
    figures["database"] = origin
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="finish in well under a minute")
    figures = asyncio.run(main(parser.parse_args().quick))
    print(json.dumps(figures))
