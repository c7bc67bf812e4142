"""`bank erasures rebuild-journal`: a lost journal, put back from an older copy, gets the
erasures made since from the newest database's receipts, so a later restore still re-erases
everyone (deploy/README.md, "Backups")."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bank.app import PACKAGES
from bank.cli import main as cli
from bank.crypto.erasure_journal import ErasureEntry
from bank.crypto.keystore import KeyStore
from bank.crypto.local_provider import JOURNAL_FILE, LocalKeyProvider
from bank.vault.erasure import erase_resident
from bank.vault.steps import ingest_step_days
from tests.bank.vault.test_erasure_backup import TODAY, _account, _days


async def _erase(vault: AsyncEngine, keys: KeyStore) -> ErasureEntry:
    account = _account()
    async with AsyncSession(vault, expire_on_commit=False) as session, session.begin():
        session.add(account)
        await session.flush()
        await ingest_step_days(session, keys, account.id, _days(8000), today=TODAY)
        receipt = await erase_resident(session, keys, account, PACKAGES)
    return ErasureEntry(account.id, receipt.erased_at, receipt.id)


async def test_a_lost_journal_is_rebuilt_from_an_older_copy_and_the_newest_receipts(
    vault: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "keys" / "vault"  # the CLI's, from data_dir
    keys = KeyStore(LocalKeyProvider(directory))
    first = await _erase(vault, keys)
    older_copy = tmp_path / "journal-backup"
    shutil.copy(directory / JOURNAL_FILE, older_copy)
    second, third = await _erase(vault, keys), await _erase(vault, keys)
    assert await keys.erasures() == [first, second, third]

    # The live journal is lost; the newest backup of it is put back.
    shutil.copy(older_copy, directory / JOURNAL_FILE)
    assert await keys.erasures() == [first]
    url = vault.url.set(drivername="postgresql").render_as_string(hide_password=False)
    monkeypatch.setenv("BANK_DATABASE_URL", url)
    monkeypatch.setenv("BANK_DATA_DIR", str(tmp_path))

    async def rebuild() -> dict[str, int]:
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["erasures", "rebuild-journal"])
        assert result.exit_code == 0, result.output
        summary: dict[str, int] = json.loads(result.output.strip().splitlines()[-1])
        return summary

    assert await rebuild() == {"journalled": 1, "added": 2}
    assert await keys.erasures() == [first, second, third]  # the same entries, oldest first
    assert await rebuild() == {"journalled": 3, "added": 0}
    assert await keys.erasures() == [first, second, third]
