"""docs/partners.md works as printed: its code blocks, in order, against a real `bank serve` on a
new database (a partner's key, the operator's registration, then tokens over a real socket)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bank.settings import Settings
from tests.bank.auth.factories import add_client, assertion
from tests.bank.identity.flows import committed

pytestmark = pytest.mark.committing

GUIDE = Path(__file__).parents[3] / "docs" / "partners.md"
_BLOCK = re.compile(r"^```(?P<lang>\w+)\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)


def _blocks(lang: str) -> list[str]:
    return [m["code"] for m in _BLOCK.finditer(GUIDE.read_text("utf-8")) if m["lang"] == lang]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _environment(settings: Settings, database_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANK_")}
    assert settings.master_key is not None
    env.update(
        BANK_DATABASE_URL=database_url,
        BANK_MASTER_KEY=settings.master_key.get_secret_value(),
        BANK_DATA_DIR=str(data_dir),
        BANK_LOG_LEVEL="WARNING",
        # `bank` (for the operator's shell block) is next to this interpreter.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


@pytest.fixture
def bank_env(settings: Settings, fresh_database: AsyncEngine, tmp_path: Path) -> dict[str, str]:
    url = make_url(settings.async_database_url()).set(
        drivername="postgresql", database=fresh_database.url.database
    )
    return _environment(settings, url.render_as_string(hide_password=False), tmp_path / "data")


@pytest.fixture
def served(bank_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """`bank serve` on a free port of 127.0.0.1, its public URL being that address."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**bank_env, "BANK_PUBLIC_URL": url}
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bank.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "bank serve did not become ready"
            time.sleep(0.3)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def _run(args: list[str], *, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_guide_has_the_blocks_this_test_runs() -> None:
    assert len(_blocks("python")) == 2
    assert len(_blocks("sh")) == 1


def test_the_partner_guide_works_as_printed(
    served: str, bank_env: dict[str, str], tmp_path: Path
) -> None:
    make_keys, use_tokens = _blocks("python")
    (register,) = _blocks("sh")
    partner = tmp_path / "partner"
    partner.mkdir()

    made = _run([sys.executable, "-c", make_keys], cwd=partner, env=bank_env)
    assert "send partner-jwks.json to the bank" in made
    assert (partner / "partner-key.json").stat().st_mode & 0o777 == 0o600

    # The operator's commands, run by a shell in the directory the public keys were sent to.
    printed = _run(["bash", "-euo", "pipefail", "-c", register], cwd=partner, env=bank_env)
    client_id = printed.strip().splitlines()[-1]
    assert client_id.startswith("partner-")

    partner_env = {**bank_env, "BANK_URL": served, "CLIENT_ID": client_id}
    output = _run([sys.executable, "-c", use_tokens], cwd=partner, env=partner_env)
    assert "token for 'partner:data', valid" in output
    assert "the bank says: active" in output
    assert output.rstrip().endswith("revoked")


async def test_a_revoked_token_is_inactive_at_once_on_a_real_server(
    served: str, fresh_database: AsyncEngine
) -> None:
    # `bank serve` owns its database, so its auth cache is live (tests' apps never are): the
    # answer right after a revocation must not come from what was cached before it.
    client_id, key = await committed(fresh_database, add_client)

    def signed(path: str) -> dict[str, str]:
        return {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion(client_id, key, audience=f"{served}{path}"),
        }

    async with httpx.AsyncClient(base_url=served, timeout=10) as http:
        for _ in range(40):
            issued = await http.post(
                "/oauth/token", data={"grant_type": "client_credentials", **signed("/oauth/token")}
            )
            token = issued.json()["access_token"]
            about = {"token": token, **signed("/oauth/introspect")}
            assert (await http.post("/oauth/introspect", data=about)).json()["active"] is True
            revoked = await http.post(
                "/oauth/revoke", data={"token": token, **signed("/oauth/revoke")}
            )
            assert revoked.status_code == 200, revoked.text
            about = {"token": token, **signed("/oauth/introspect")}
            assert (await http.post("/oauth/introspect", data=about)).json() == {"active": False}
