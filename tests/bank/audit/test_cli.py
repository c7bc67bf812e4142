"""`bank audit verify|list`, and `bank clients ...` writing to the audit log, on committed data."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import AsyncIterator

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.audit import AuditLog
from bank.audit.models import AuditEntry
from bank.cli import main as cli
from tests.bank.audit.conftest import OPERATOR, new_stream, tamper

pytestmark = pytest.mark.committing


@pytest.fixture(autouse=True)
def _environment(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANK_DATABASE_URL", database_url)


async def _invoke(args: list[str]) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, args)


@pytest.fixture
async def committed_stream(engine: AsyncEngine) -> AsyncIterator[str]:
    """Three committed entries in a stream of their own, removed again afterwards."""
    stream = new_stream()
    async with AsyncSession(engine) as session, session.begin():
        for n in range(3):
            await AuditLog(session).append(
                stream, principal=OPERATOR, action="client.suspended", target=f"p-{n}", reason="r"
            )
    yield stream
    async with engine.begin() as connection:
        await tamper(connection, "DELETE FROM audit_entries WHERE stream = :s", s=stream)


async def test_verify_prints_one_line_per_stream_and_exits_0(committed_stream: str) -> None:
    result = await _invoke(["audit", "verify", "--stream", committed_stream])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{committed_stream}: 3 entries, chain intact (head ")
    everything = await _invoke(["audit", "verify"])
    assert f"{committed_stream}: 3 entries, chain intact" in everything.output


async def test_verify_exits_1_naming_the_broken_stream_and_sequence_number(
    committed_stream: str, engine: AsyncEngine
) -> None:
    async with engine.begin() as connection:
        await tamper(
            connection,
            "UPDATE audit_entries SET reason = 'rewritten' WHERE stream = :s AND seq = 2",
            s=committed_stream,
        )
    result = await _invoke(["audit", "verify", "--stream", committed_stream])
    assert result.exit_code == 1
    assert f"{committed_stream}: chain broken at seq 2" in result.output


async def test_list_prints_the_newest_entries_as_json_lines(committed_stream: str) -> None:
    result = await _invoke(["audit", "list", "--stream", committed_stream, "--limit", "2"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["seq"] for line in lines] == [3, 2]
    assert lines[0]["principal"] == f"operator:{OPERATOR.id}"
    assert lines[0]["action"] == "client.suspended"


async def test_client_commands_append_with_the_login_user_and_the_reason(
    engine: AsyncEngine,
) -> None:
    added = await _invoke(
        [
            "clients", "add-app", "--kind", "resident_app", "--name", "Audit test app",
            "--redirect-uri", "https://app.example.jp/cb", "--scope", "records:read",
        ]
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    client_id = added.stdout.strip()
    reason = "incident INC-42: leaked redirect"
    suspended = await _invoke(["clients", "suspend", client_id, "--reason", reason])
    assert suspended.exit_code == 0, suspended.output
    too_long = await _invoke(["clients", "activate", client_id, "--reason", "x" * 501])
    assert too_long.exit_code == 1
    assert "reason must have 1 to 500 characters" in too_long.output

    async with AsyncSession(engine) as session:
        entries = list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.stream == "clients", AuditEntry.target == client_id)
                .order_by(AuditEntry.seq)
            )
        )
    assert [(e.action, e.reason) for e in entries] == [
        ("client.registered", None),
        ("client.suspended", reason),
    ]
    assert {(e.principal_type, e.principal_id) for e in entries} == {("cli", getpass.getuser())}
    verified = await _invoke(["audit", "verify", "--stream", "clients"])
    assert verified.exit_code == 0, verified.output
    # The refused activation rolled back with its change: the client is still suspended.
    listed = await _invoke(["clients", "list"])
    assert f"{client_id}\tresident_app\tsuspended" in listed.output
