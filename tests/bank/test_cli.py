"""The `bank` command: configuration errors, migrations status, OpenAPI export."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from bank.cli import _load_service
from bank.cli import main as cli
from bank.db.migrate import heads
from bank.identity.settings import IdentitySettings, check_delivery
from bank.settings import SettingsError

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


async def _invoke(args: list[str]) -> Result:
    # The CLI runs its own event loop, so it needs a thread of its own inside this async test.
    return await asyncio.to_thread(CliRunner().invoke, cli, args)


def test_bad_configuration_exits_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANK_MAX_BODY_BYTES", "not-a-number")
    result = CliRunner().invoke(cli, ["openapi", "export", "--output", "-"])
    assert result.exit_code == 1
    assert "BANK_MAX_BODY_BYTES" in result.output


def test_openapi_export_matches_the_checked_in_document() -> None:
    result = CliRunner().invoke(cli, ["openapi", "export", "--output", "-"])
    assert result.exit_code == 0, result.output
    assert result.output == OPENAPI_FILE.read_text(encoding="utf-8")


async def test_db_current_reports_head(
    engine: AsyncEngine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BANK_DATABASE_URL", database_url)
    result = await _invoke(["db", "current"])
    assert result.exit_code == 0, result.output
    records, keystore = result.output.strip().splitlines()[-2:]
    assert records.startswith("records: ")
    assert records.endswith("(head)")
    assert keystore == f"keystore: {next(iter(heads(keystore=True)))} (head)"


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    for command in ("serve", "worker", "db", "openapi", "jobs"):
        assert command in result.output


def test_a_production_service_without_an_smtp_server_refuses_to_start(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `bank serve` and `bank worker` load their settings through this before anything starts
    # (invoking them here would serve for good if the check ever went missing).
    monkeypatch.setenv("BANK_DATABASE_URL", database_url)
    monkeypatch.setenv("BANK_ENVIRONMENT", "production")
    monkeypatch.delenv("BANK_IDENTITY__SMTP_HOST", raising=False)
    with pytest.raises(click.ClickException, match="BANK_IDENTITY__SMTP_HOST: required"):
        _load_service()
    monkeypatch.setenv("BANK_IDENTITY__SMTP_HOST", "smtp.city.example")
    assert _load_service().environment == "production"


@given(
    environment=st.sampled_from(["development", "production", "test"]),
    host=st.sampled_from([None, "", "smtp.city.example"]),
)
def test_only_production_needs_an_smtp_server(environment: str, host: str | None) -> None:
    section = IdentitySettings(smtp_host=host)
    if environment == "production" and not host:
        with pytest.raises(SettingsError, match="BANK_IDENTITY__SMTP_HOST"):
            check_delivery(environment, section)
    else:
        check_delivery(environment, section)
