"""The erasure journal kept by the key providers: durable, append-only, readable by another
process, tolerant of a torn last line and nothing else; on SoftHSM2, token data objects that the
bank cannot modify."""

from __future__ import annotations

import os
import stat
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pkcs11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pkcs11 import Attribute, ObjectClass
from pkcs11.exceptions import PKCS11Error
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.erasure_journal import ErasureEntry, parse_journal
from bank.crypto.keystore import DataKey, KeyStore, ResidentErased
from bank.crypto.local_provider import JOURNAL_FILE, LocalKeyProvider
from bank.crypto.pkcs11_provider import JOURNAL_APPLICATION, erasure_label
from bank.crypto.provider import KeyProvider, KeyProviderError
from tests.bank.crypto.softhsm import SoftHsm

_times = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-5))]),
)
entries = st.builds(ErasureEntry, st.uuids(), _times, st.uuids())
_scratch = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _entry(at: datetime | None = None) -> ErasureEntry:
    return ErasureEntry(uuid.uuid4(), at or datetime.now(UTC), uuid.uuid4())


def _fresh(tmp_path: Path) -> Path:
    return tmp_path / uuid.uuid4().hex  # hypothesis runs many examples in one tmp_path


# --- both providers -----------------------------------------------------------------------


@pytest.fixture(params=["local", "pkcs11"])
def providers(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[KeyProvider, KeyProvider]:
    """A provider and its twin: another instance on the same key store (another process)."""
    if request.param == "local":
        return LocalKeyProvider(tmp_path / "vault"), LocalKeyProvider(tmp_path / "vault")
    hsm: SoftHsm = request.getfixturevalue("softhsm")
    return hsm.provider(), hsm.provider()


def test_a_journalled_erasure_is_read_back_by_another_instance_exactly(
    providers: tuple[KeyProvider, KeyProvider],
) -> None:
    provider, twin = providers
    assert twin.erasures() == []
    start = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)
    written = [_entry(start + timedelta(seconds=n)) for n in range(5)]
    for entry in written:
        provider.journal_erasure(entry)
    assert twin.erasures() == written  # oldest first, times to the microsecond
    assert all(twin.is_erased(entry.resident_id) for entry in written)
    assert not twin.is_erased(uuid.uuid4())
    assert not twin.is_erased(written[0].receipt_id)  # the resident's id, not the receipt's


def test_a_resident_journalled_twice_is_listed_twice(
    providers: tuple[KeyProvider, KeyProvider],
) -> None:
    provider, twin = providers
    first = _entry(datetime(2026, 1, 1, tzinfo=UTC))
    again = ErasureEntry(first.resident_id, datetime(2026, 2, 1, tzinfo=UTC), uuid.uuid4())
    provider.journal_erasure(first)
    provider.journal_erasure(again)
    assert twin.erasures() == [first, again]


def test_an_entry_needs_a_zone() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ErasureEntry(uuid.uuid4(), datetime(2026, 1, 1), uuid.uuid4())


@given(entry=entries)
def test_an_entry_is_one_line_that_parses_back(entry: ErasureEntry) -> None:
    line = entry.line()
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert ErasureEntry.parse(line[:-1]) == entry
    # Nothing but the three fields: two ids and a time.
    assert len(line[:-1].split(b" ")) == 3


# --- the local journal file -----------------------------------------------------------------


@_scratch
@given(written=st.lists(entries, min_size=1, max_size=12))
def test_the_local_journal_only_ever_grows(tmp_path: Path, written: list[ErasureEntry]) -> None:
    directory = _fresh(tmp_path)
    provider = LocalKeyProvider(directory)
    before = b""
    for entry in written:
        provider.journal_erasure(entry)
        now = (directory / JOURNAL_FILE).read_bytes()
        assert now.startswith(before)
        assert now[len(before) :] == entry.line()
        before = now
    assert LocalKeyProvider(directory).erasures() == written
    mode = (directory / JOURNAL_FILE).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


@_scratch
@given(
    written=st.lists(entries, min_size=0, max_size=5),
    torn=entries,
    cut=st.integers(min_value=1),
    after=entries,
)
def test_a_torn_last_line_is_skipped_then_cut_by_the_next_append(
    tmp_path: Path, written: list[ErasureEntry], torn: ErasureEntry, cut: int, after: ErasureEntry
) -> None:
    directory = _fresh(tmp_path)
    provider = LocalKeyProvider(directory)
    for entry in written:
        provider.journal_erasure(entry)
    directory.mkdir(exist_ok=True)
    line = torn.line()
    fragment = line[: 1 + cut % (len(line) - 1)]  # a write that stopped before its newline
    with (directory / JOURNAL_FILE).open("ab") as handle:
        handle.write(fragment)
    assert LocalKeyProvider(directory).erasures() == written
    assert not provider.is_erased(torn.resident_id) or torn.resident_id in {
        entry.resident_id for entry in written
    }
    provider.journal_erasure(after)
    assert (directory / JOURNAL_FILE).read_bytes() == b"".join(
        entry.line() for entry in [*written, after]
    )
    assert LocalKeyProvider(directory).erasures() == [*written, after]


def test_a_corrupt_line_inside_the_journal_is_reported_not_skipped(tmp_path: Path) -> None:
    provider = LocalKeyProvider(tmp_path)
    first, last = _entry(), _entry()
    provider.journal_erasure(first)
    with (tmp_path / JOURNAL_FILE).open("ab") as handle:
        handle.write(b"someone@example.jp was here\n")
    provider.journal_erasure(last)
    with pytest.raises(KeyProviderError, match="entry 2 is corrupt") as raised:
        LocalKeyProvider(tmp_path).erasures()
    assert "example" not in str(raised.value)  # the line's content is never echoed
    with pytest.raises(KeyProviderError):
        LocalKeyProvider(tmp_path).is_erased(first.resident_id)


def test_parse_journal_skips_only_the_unterminated_tail() -> None:
    entry = _entry()
    assert parse_journal(b"") == []
    assert parse_journal(entry.line()) == [entry]
    assert parse_journal(entry.line() + entry.line()[:-1]) == [entry]
    with pytest.raises(KeyProviderError):
        parse_journal(entry.line()[:-1] + b"\n" + b"x\n")


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths os.fsync was called on, in order (the real fsync still runs)."""
    calls: list[str] = []
    real = os.fsync

    def fsync(descriptor: int) -> None:
        calls.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def test_an_append_returns_only_after_the_file_and_its_new_name_are_fsynced(
    tmp_path: Path, fsynced: list[str]
) -> None:
    provider = LocalKeyProvider(tmp_path / "vault")
    provider.journal_erasure(_entry())
    journal = str((tmp_path / "vault" / JOURNAL_FILE).resolve())
    assert fsynced == [journal, str((tmp_path / "vault").resolve())]
    fsynced.clear()
    provider.journal_erasure(_entry())
    assert fsynced == [journal]  # the name exists already


def test_appends_from_many_writers_never_interleave(tmp_path: Path) -> None:
    written: list[list[ErasureEntry]] = [[_entry() for _ in range(40)] for _ in range(6)]

    def write(mine: list[ErasureEntry]) -> None:
        provider = LocalKeyProvider(tmp_path)  # each its own file descriptor and lock
        for entry in mine:
            provider.journal_erasure(entry)

    threads = [threading.Thread(target=write, args=(mine,)) for mine in written]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    read = LocalKeyProvider(tmp_path).erasures()
    assert sorted(read, key=str) == sorted((e for mine in written for e in mine), key=str)
    for mine in written:  # each writer's entries in its own order
        assert [entry for entry in read if entry in mine] == mine


# --- the PKCS#11 journal on SoftHSM2 ---------------------------------------------------------


def test_pkcs11_entries_are_private_unmodifiable_data_objects_on_the_token(
    softhsm: SoftHsm,
) -> None:
    provider = softhsm.provider()
    entry = _entry()
    provider.journal_erasure(entry)
    with softhsm.session(provider) as session:
        found = list(
            session.get_objects(
                {Attribute.CLASS: ObjectClass.DATA, Attribute.APPLICATION: JOURNAL_APPLICATION}
            )
        )
        assert len(found) == 1
        item = found[0]
        assert item[Attribute.LABEL] == erasure_label(entry.resident_id)
        assert bytes(item[Attribute.VALUE]) == entry.line()
        assert item[Attribute.TOKEN] is True
        assert item[Attribute.PRIVATE] is True
        assert item[Attribute.MODIFIABLE] is False
        with pytest.raises(PKCS11Error):
            item[Attribute.VALUE] = _entry().line()
    assert softhsm.provider().erasures() == [entry]


def test_pkcs11_entries_survive_the_module_being_reloaded(softhsm: SoftHsm) -> None:
    provider = softhsm.provider()
    written = [_entry(datetime(2026, 1, n, tzinfo=UTC)) for n in range(1, 4)]
    for entry in reversed(written):  # stored in any order, listed oldest first
        provider.journal_erasure(entry)
    provider.close()
    pkcs11.lib(str(softhsm.module)).reinitialize()
    reopened = softhsm.provider()
    assert reopened.erasures() == written
    assert reopened.is_erased(written[1].resident_id)


def test_pkcs11_journal_objects_are_invisible_without_the_pin(softhsm: SoftHsm) -> None:
    provider = softhsm.provider()
    provider.journal_erasure(_entry())
    provider.close()
    token = pkcs11.lib(str(softhsm.module)).get_token(token_label=softhsm.label)
    with token.open() as public:  # no login
        assert list(public.get_objects({Attribute.CLASS: ObjectClass.DATA})) == []


def test_a_corrupt_pkcs11_entry_is_reported(softhsm: SoftHsm) -> None:
    provider = softhsm.provider()
    provider.journal_erasure(_entry())
    with softhsm.session(provider) as session:
        session.create_object(
            {
                Attribute.CLASS: ObjectClass.DATA,
                Attribute.APPLICATION: JOURNAL_APPLICATION,
                Attribute.LABEL: erasure_label(uuid.uuid4()),
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.VALUE: b"not an entry\n",
            }
        )
    with pytest.raises(KeyProviderError, match="corrupt"):
        provider.erasures()


async def test_the_key_store_on_an_hsm_makes_no_key_for_a_journalled_resident(
    softhsm: SoftHsm, db_session: AsyncSession
) -> None:
    keys = KeyStore(softhsm.provider())
    erased, kept = uuid.uuid4(), uuid.uuid4()
    await keys.journal_erasure(ErasureEntry(erased, datetime.now(UTC), uuid.uuid4()))
    with pytest.raises(ResidentErased):
        await keys.for_sealing(db_session, erased, 1, has_key=False)
    assert (await keys.for_sealing(db_session, kept, 1, has_key=False)).version == 1
    rows = select(DataKey.resident_id).where(DataKey.resident_id.in_([erased, kept]))
    assert list(await db_session.scalars(rows)) == [kept]
