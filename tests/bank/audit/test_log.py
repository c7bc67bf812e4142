"""Appending to and verifying the audit log in real PostgreSQL, tampering included."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from bank.audit import AuditLog, verify
from bank.audit.errors import InvalidAuditEntry
from bank.audit.rules import GENESIS_HASH, Entry, recompute
from bank.audit.service import StreamReport
from bank.db import make_session_factory
from tests.bank.audit.conftest import OPERATOR, new_stream, tamper
from tests.bank.audit.strategies import FIELDS, appends, changed_value
from tests.conftest import savepoint_sessions


async def append_some(session: AsyncSession, stream: str, count: int) -> list[Entry]:
    log = AuditLog(session)
    return [
        await log.append(
            stream,
            principal=OPERATOR,
            action="client.suspended",
            target=f"partner-{n}",
            reason=f"reason {n}",
            details={"from": "active", "to": "suspended", "n": n},
        )
        for n in range(count)
    ]


async def report(session: AsyncSession, stream: str) -> StreamReport:
    (found,) = await verify(session, stream)
    return found


async def test_entries_chain_from_genesis_with_gapless_sequence_numbers(
    db_session: AsyncSession, stream: str
) -> None:
    entries = await append_some(db_session, stream, 4)
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == GENESIS_HASH
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    found = await report(db_session, stream)
    assert (found.entries, found.broken, found.head) == (4, None, entries[-1].hash)
    assert found.summary().startswith(f"{stream}: 4 entries, chain intact")


async def test_an_append_rolled_back_with_its_transaction_leaves_no_gap(
    db_session: AsyncSession, stream: str
) -> None:
    await append_some(db_session, stream, 1)
    savepoint = await db_session.begin_nested()
    await append_some(db_session, stream, 1)
    await savepoint.rollback()
    (entry,) = await append_some(db_session, stream, 1)
    assert entry.seq == 2
    assert (await report(db_session, stream)).broken is None


async def test_a_refused_entry_writes_nothing(db_session: AsyncSession, stream: str) -> None:
    with pytest.raises(InvalidAuditEntry):
        await AuditLog(db_session).append(
            stream, principal=OPERATOR, action="client.suspended", target="p", reason="x" * 501
        )
    assert await verify(db_session, stream) == []


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET reason = 'rewritten' WHERE stream = :stream",
        "DELETE FROM audit_entries WHERE stream = :stream",
        "TRUNCATE audit_entries",
    ],
)
async def test_the_table_refuses_update_delete_and_truncate(
    db_session: AsyncSession, connection: AsyncConnection, stream: str, statement: str
) -> None:
    await append_some(db_session, stream, 2)
    savepoint = await connection.begin_nested()
    with pytest.raises(DBAPIError, match="append-only"):
        await connection.execute(text(statement), {"stream": stream})
    await savepoint.rollback()
    # Replication mode, which silences ordinary triggers, does not silence these.
    savepoint = await connection.begin_nested()
    await connection.execute(text("SET LOCAL session_replication_role = replica"))
    with pytest.raises(DBAPIError, match="append-only"):
        await connection.execute(text(statement), {"stream": stream})
    await savepoint.rollback()


async def _broken_at(session: AsyncSession, stream: str) -> tuple[int, str]:
    found = await report(session, stream)
    assert found.broken is not None, found
    assert f"{stream}: chain broken at seq {found.broken.seq}" in found.summary()
    return found.broken.seq, found.broken.problem


async def test_verify_finds_a_modified_reason(
    db_session: AsyncSession, connection: AsyncConnection, stream: str
) -> None:
    await append_some(db_session, stream, 5)
    await tamper(
        connection,
        "UPDATE audit_entries SET reason = 'nothing to see' WHERE stream = :s AND seq = 3",
        s=stream,
    )
    assert await _broken_at(db_session, stream) == (3, "its content does not match its hash")


async def test_verify_finds_a_modified_entry_whose_hash_was_recomputed(
    db_session: AsyncSession, connection: AsyncConnection, stream: str
) -> None:
    entries = await append_some(db_session, stream, 5)
    forged = dataclasses.replace(entries[2], reason="forged")
    await tamper(
        connection,
        "UPDATE audit_entries SET reason = 'forged', hash = :h WHERE stream = :s AND seq = 3",
        s=stream,
        h=recompute(forged),
    )
    assert await _broken_at(db_session, stream) == (4, "does not chain from the entry before")


async def test_verify_finds_a_deleted_entry_as_a_gap(
    db_session: AsyncSession, connection: AsyncConnection, stream: str
) -> None:
    await append_some(db_session, stream, 5)
    await tamper(connection, "DELETE FROM audit_entries WHERE stream = :s AND seq = 2", s=stream)
    assert await _broken_at(db_session, stream) == (2, "entry 2 is missing (next is 3)")


async def test_verify_finds_a_deleted_first_entry(
    db_session: AsyncSession, connection: AsyncConnection, stream: str
) -> None:
    await append_some(db_session, stream, 3)
    await tamper(connection, "DELETE FROM audit_entries WHERE stream = :s AND seq = 1", s=stream)
    assert (await _broken_at(db_session, stream))[0] == 1


async def test_verify_finds_reordered_entries(
    db_session: AsyncSession, connection: AsyncConnection, stream: str
) -> None:
    await append_some(db_session, stream, 5)
    for old, new in ((2, 1000), (4, 2), (1000, 4)):  # the primary key is checked row by row
        await tamper(
            connection,
            "UPDATE audit_entries SET seq = :new WHERE stream = :s AND seq = :old",
            s=stream,
            old=old,
            new=new,
        )
    assert (await _broken_at(db_session, stream))[0] == 2


async def test_verify_finds_an_inserted_entry(
    db_session: AsyncSession, connection: AsyncConnection, stream: str
) -> None:
    await append_some(db_session, stream, 4)
    # Shift the tail up by one and slip a copy of entry 2 in at 3 (INSERT itself is allowed).
    await tamper(
        connection,
        "UPDATE audit_entries SET seq = seq + 100 WHERE stream = :s AND seq >= 3",
        s=stream,
    )
    await tamper(
        connection,
        "UPDATE audit_entries SET seq = seq - 99 WHERE stream = :s AND seq >= 103",
        s=stream,
    )
    await connection.execute(
        text(
            "INSERT INTO audit_entries SELECT stream, 3, occurred_at, principal_type, "
            "principal_id, action, 'partner-x', reason, details, prev_hash, hash "
            "FROM audit_entries WHERE stream = :s AND seq = 2"
        ),
        {"s": stream},
    )
    assert (await _broken_at(db_session, stream))[0] == 3


async def test_verify_reports_every_stream_and_only_breaks_the_tampered_one(
    db_session: AsyncSession, connection: AsyncConnection
) -> None:
    intact, tampered = sorted([new_stream(), new_stream()])
    await append_some(db_session, intact, 2)
    await append_some(db_session, tampered, 2)
    await tamper(
        connection,
        "UPDATE audit_entries SET target = 'x' WHERE stream = :s AND seq = 2",
        s=tampered,
    )
    reports = {r.stream: r for r in await verify(db_session)}
    assert reports[intact].broken is None
    assert reports[tampered].broken is not None


_DB_EXAMPLES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_DB_EXAMPLES
@given(arguments=st.lists(appends(), min_size=1, max_size=5), data=st.data())
async def test_verify_finds_any_single_field_modification_in_the_database(
    connection: AsyncConnection, arguments: list[dict[str, Any]], data: st.DataObject
) -> None:
    # Each example in a savepoint of its own, with a session of its own inside it.
    savepoint = await connection.begin_nested()
    try:
        async with savepoint_sessions(connection)() as session:
            await _tamper_one_field(session, connection, arguments, data)
    finally:
        await savepoint.rollback()


async def _tamper_one_field(
    session: AsyncSession,
    connection: AsyncConnection,
    arguments: list[dict[str, Any]],
    data: st.DataObject,
) -> None:
    stream = new_stream()
    log = AuditLog(session)
    entries = [await log.append(stream, **args) for args in arguments]
    assert (await report(session, stream)).broken is None
    entry = data.draw(st.sampled_from(entries))
    field = data.draw(st.sampled_from(FIELDS))
    value = data.draw(changed_value(entry, field))
    await tamper(
        connection,
        f"UPDATE audit_entries SET {field} = :v WHERE stream = :s AND seq = :seq",
        v=json.dumps(value) if field == "details" else value,
        s=stream,
        seq=entry.seq,
    )
    reports = await verify(session, stream) + await verify(session, stream + "-moved")
    assert any(r.broken is not None for r in reports)


@pytest.mark.committing
async def test_concurrent_appends_to_one_stream_never_fork_the_chain(engine: AsyncEngine) -> None:
    stream = new_stream()
    sessions = make_session_factory(engine)

    async def append_slowly(n: int) -> None:
        async with sessions() as session, session.begin():
            await append_some(session, stream, 1)
            await asyncio.sleep(0.05 if n % 2 else 0)  # hold the lock while others queue

    try:
        await asyncio.gather(*(append_slowly(n) for n in range(12)))
        async with sessions() as session, session.begin():
            found = await report(session, stream)
        assert (found.entries, found.broken) == (12, None)
    finally:
        async with engine.begin() as connection:
            await tamper(connection, "DELETE FROM audit_entries WHERE stream = :s", s=stream)
