"""`bank clients ...` and `bank keys rotate-signing` against the test database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bank.auth.models import OAuthClient, SigningKey
from bank.cli import main as cli
from bank.settings import Settings
from tests.bank.auth.factories import CORPORATE_NUMBER, new_key
from tests.bank.identity.flows import committed


@pytest.fixture(autouse=True)
def _environment(
    database_url: str, engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tests' own master key and data directory: a signing key this CLI seals must open in
    # the app under test (and in later runs on the same database).
    monkeypatch.setenv("BANK_DATABASE_URL", database_url)
    assert settings.master_key is not None
    monkeypatch.setenv("BANK_MASTER_KEY", settings.master_key.get_secret_value())
    monkeypatch.setenv("BANK_DATA_DIR", str(settings.data_dir))


async def _invoke(args: list[str]) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, args)


async def _client(engine: AsyncEngine, client_id: str) -> OAuthClient:
    found = await committed(
        engine,
        lambda s: s.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id)),
    )
    assert found is not None
    return found


async def test_register_and_activate_the_residents_app(engine: AsyncEngine) -> None:
    added = await _invoke(
        [
            "clients", "add-app", "--kind", "resident_app", "--name", "Sapporo Health",
            "--redirect-uri", "jp.sapporo.bank.app:/oauth/callback",
            "--scope", "records:read", "--scope", "account",
        ]
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    client_id = added.stdout.strip()
    assert (await _client(engine, client_id)).status == "pending"
    activated = await _invoke(["clients", "activate", client_id])
    assert activated.exit_code == 0, activated.output
    client = await _client(engine, client_id)
    assert client.status == "active"
    assert client.redirect_uris == ["jp.sapporo.bank.app:/oauth/callback"]
    listed = await _invoke(["clients", "list"])
    assert f"{client_id}\tresident_app\tactive" in listed.stdout


async def test_partner_without_certification_cannot_be_activated(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [new_key().as_dict(private=False)]}), encoding="utf-8")
    added = await _invoke(
        [
            "clients", "add-partner", "--name", "Sapporo Wellness KK",
            "--corporate-number", CORPORATE_NUMBER, "--contact", "desk@wellness.example.jp",
            "--jwks-file", str(jwks), "--scope", "partner:data",
        ]
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    refused = await _invoke(["clients", "activate", added.stdout.strip()])
    assert refused.exit_code == 1
    assert "certification" in refused.output
    assert (await _client(engine, added.stdout.strip())).status == "pending"


async def test_bad_registrations_are_refused_with_the_reason(tmp_path: Path) -> None:
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [new_key().as_dict(private=True)]}), encoding="utf-8")
    refused = await _invoke(
        [
            "clients", "add-source", "--name", "Sapporo Transit",
            "--corporate-number", "1234567890123", "--contact", "desk@transit.example.jp",
            "--jwks-file", str(private), "--scope", "ingest:transit",
        ]
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "法人番号" in refused.output
    http_redirect = await _invoke(
        [
            "clients", "add-app", "--kind", "operator_console", "--name", "Console",
            "--redirect-uri", "http://console.example.jp/cb", "--scope", "admin:clients",
        ]
    )  # fmt: skip
    assert http_redirect.exit_code == 1
    assert "redirect URIs must be https" in http_redirect.output


async def test_rotate_signing_key(engine: AsyncEngine) -> None:
    rotated = await _invoke(["keys", "rotate-signing"])
    assert rotated.exit_code == 0, rotated.output
    kid = rotated.stdout.strip().removeprefix("new signing key ")
    key = await committed(
        engine, lambda s: s.scalar(select(SigningKey).where(SigningKey.kid == kid))
    )
    assert key is not None
    assert key.retired_at is None
