"""The README's run command on a machine with no database server: `bank serve --demo`."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bank.crypto.keyring import LocalKeyring
from bank.crypto.keystore import KeyStore
from bank.crypto.providers import key_provider_from_settings
from bank.identity.models import SignInThrottle
from bank.identity.protect import AccountSecrets
from bank.settings import Settings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"bank serve exited early with {process.returncode}")
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail("bank serve did not become ready in time")


def test_serve_demo_starts_embedded_postgres_and_stops_it(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANK_")}
    env["BANK_DATA_DIR"] = str(tmp_path / "data")
    env["BANK_DEMO_RESIDENTS"], env["BANK_DEMO_DAYS"] = "4", "7"  # a small city, quickly
    output = tmp_path / "stdout.txt"
    with output.open("wb") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "bank.cli", "serve", "--demo", "--port", str(port)],
            env=env,
            stdout=stdout,
            stderr=subprocess.DEVNULL,
        )
    try:
        ready = _wait_ready(f"http://127.0.0.1:{port}/health/ready", process, timeout_s=90)
        assert ready.json() == {
            "status": "ok",
            "database": "ok",
            "migrations": "head",
            "worker": "up",  # the embedded job worker of --demo
            "erasures": "reapplied",
            "keystore": "ok",
        }
        docs = httpx.get(f"http://127.0.0.1:{port}/docs", timeout=5)
        assert docs.status_code == 200
        assert "swagger-ui-bundle.js" in docs.text
        # In development the landing page shows the demo's sign-ins and app, as printed.
        landing = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert landing.status_code == 200
        assert landing.text.count("@demo.city-bank.example") == 4
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=60)
    assert exit_code == 0
    printed = output.read_text()
    assert "seeded 4 residents" in printed
    assert printed.count("@demo.city-bank.example") == 4  # the first five would get passwords
    client_id = re.search(r"client_id +(resident-app-\S+)", printed)
    assert client_id is not None
    assert client_id.group(1) in landing.text
    # Its redirects in development: the bank's callback page and Swagger UI's redirect page.
    assert "http://127.0.0.1:8000/dev/callback" in printed
    assert "http://127.0.0.1:8000/docs/oauth2-redirect.html" in printed
    # The embedded server was stopped cleanly: PostgreSQL removes its pid file on shutdown.
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists()


def _serve(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bank.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, port


@pytest.mark.committing
@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-proxy", "untrusted-peer"])
async def test_the_throttle_sees_a_forwarded_address_only_from_a_trusted_proxy(
    settings: Settings, engine: AsyncEngine, tmp_path: Path, trusted: bool
) -> None:
    # The "proxy" connects from an address of its own on the loopback network (all of
    # 127.0.0.0/8 is local), so this test's throttle rows are its own.
    proxy = "127." + ".".join(str(secrets.randbelow(250) + 2) for _ in range(3))
    resident = f"203.0.113.{secrets.randbelow(250) + 1}"
    # An address of this run's own: in a database reused across runs, a fixed one would have
    # reached its account's failure limit, and a blocked account's sign-in counts no address.
    nobody = f"nobody-{secrets.token_hex(6)}@example.jp"
    assert settings.database_url is not None
    assert settings.master_key is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANK_")}
    env |= {
        "BANK_DATABASE_URL": settings.database_url.get_secret_value(),
        "BANK_MASTER_KEY": settings.master_key.get_secret_value(),
        "BANK_DATA_DIR": str(tmp_path / "data"),
        "BANK_TRUSTED_PROXIES": proxy if trusted else "",
    }
    process, port = _serve(env)
    try:
        url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(_wait_ready, f"{url}/health/ready", process, 60)
        transport = httpx.AsyncHTTPTransport(local_address=proxy)
        async with httpx.AsyncClient(transport=transport, base_url=url) as via_proxy:
            page = await via_proxy.get("/signin")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None
            refused = await via_proxy.post(
                "/signin",
                data={"csrf": csrf.group(1), "email": nobody, "password": "x" * 12},
                headers={"X-Forwarded-For": resident},
            )
            assert refused.status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 60)

    secrets_ = AccountSecrets(
        LocalKeyring.from_settings(settings), KeyStore(key_provider_from_settings(settings))
    )
    keys = {name: f"address:{secrets_.address_index(ip)}" for name, ip in
            (("proxy", proxy), ("resident", resident))}  # fmt: skip
    async with engine.begin() as connection:
        rows = await connection.execute(
            select(SignInThrottle.key, SignInThrottle.failures).where(
                SignInThrottle.key.in_(keys.values())
            )
        )
        counted: dict[str, int] = {row.key: row.failures for row in rows}
        await connection.execute(
            delete(SignInThrottle).where(SignInThrottle.key.in_(keys.values()))
        )
    if trusted:
        # The failure counts against the resident's own address, not the balancer's.
        assert counted == {keys["resident"]: 1}
    else:
        # X-Forwarded-For from an untrusted peer is ignored: anyone could claim any address.
        assert counted == {keys["proxy"]: 1}
