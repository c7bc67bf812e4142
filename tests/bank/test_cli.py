"""The `bank` command: configuration errors, migrations status, OpenAPI export."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.ext.asyncio import AsyncEngine

from bank.cli import main as cli
from bank.db.migrate import heads

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
