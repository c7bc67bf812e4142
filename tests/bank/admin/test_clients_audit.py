"""Every registry change through the admin API is one chained audit entry, in its transaction."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bank.audit import verify
from bank.audit.models import AuditEntry
from tests.bank.admin.conftest import OPERATOR_SUBJECT, Tokens
from tests.bank.admin.test_clients_api import CLIENTS, _partner_body, _problem, _register

REASON = "契約違反の疑い (ticket OPS-4711)\nsecond line"


async def _entries(db_session: AsyncSession, client_id: str) -> list[AuditEntry]:
    rows = await db_session.scalars(
        select(AuditEntry)
        .where(AuditEntry.stream == "clients", AuditEntry.target == client_id)
        .order_by(AuditEntry.seq)
    )
    return list(rows)


async def _clients_stream_head(db_session: AsyncSession) -> int:
    (report,) = await verify(db_session, "clients")
    assert report.broken is None, report.summary()
    return report.entries


async def _status(
    api: httpx.AsyncClient, tokens: Tokens, client_id: str, status: str, reason: str = REASON
) -> httpx.Response:
    return await api.post(
        f"{CLIENTS}/{client_id}/status",
        json={"status": status, "reason": reason},
        headers=tokens.operator(),
    )


async def test_a_suspension_with_a_reason_is_one_chained_entry_naming_the_operator(
    api: httpx.AsyncClient, tokens: Tokens, db_session: AsyncSession
) -> None:
    client_id = await _register(api, tokens, _partner_body())
    assert (await _status(api, tokens, client_id, "active", "vetted")).status_code == 200
    before = await _clients_stream_head(db_session)

    response = await _status(api, tokens, client_id, "suspended")

    assert response.status_code == 200, response.text
    assert await _clients_stream_head(db_session) == before + 1  # the chain still verifies
    suspended = (await _entries(db_session, client_id))[-1]
    assert suspended.seq == before + 1
    assert suspended.action == "client.suspended"
    assert (suspended.principal_type, suspended.principal_id) == ("operator", OPERATOR_SUBJECT)
    assert suspended.reason == REASON
    assert suspended.details == {
        "from": "active",
        "to": "suspended",
        "via_client": tokens.console_id,
    }


async def test_register_activate_suspend_reactivate_each_append_one_entry(
    api: httpx.AsyncClient, tokens: Tokens, db_session: AsyncSession
) -> None:
    body: dict[str, Any] = {**_partner_body(), "reason": "new partner, contract C-17"}
    client_id = await _register(api, tokens, body)
    for status in ("active", "suspended", "active"):
        assert (await _status(api, tokens, client_id, status)).status_code == 200
    entries = await _entries(db_session, client_id)
    assert [e.action for e in entries] == [
        "client.registered",
        "client.activated",
        "client.suspended",
        "client.reactivated",
    ]
    assert entries[0].reason == "new partner, contract C-17"
    assert entries[0].details == {
        "kind": "partner",
        "scopes": ["partner:data"],
        "via_client": tokens.console_id,
    }
    assert [e.seq for e in entries] == list(range(entries[0].seq, entries[0].seq + 4))
    await _clients_stream_head(db_session)


async def test_a_refused_change_writes_no_entry(
    api: httpx.AsyncClient, tokens: Tokens, db_session: AsyncSession
) -> None:
    client_id = await _register(api, tokens, _partner_body())
    before = await _clients_stream_head(db_session)
    # The 409 refusal to suspend the caller's own console, and an illegal transition.
    _problem(
        await _status(api, tokens, tokens.console_id, "suspended"),
        409,
        "client-is-callers-console",
    )
    _problem(await _status(api, tokens, client_id, "pending"), 409, "client-status-conflict")
    assert (await _status(api, tokens, client_id, "suspended")).status_code == 200
    _problem(await _status(api, tokens, client_id, "suspended"), 409, "client-status-conflict")
    assert await _clients_stream_head(db_session) == before + 1  # the one suspension only
    assert all(e.seq <= before for e in await _entries(db_session, tokens.console_id))


async def test_a_reason_the_log_cannot_hold_is_refused_before_anything_changes(
    api: httpx.AsyncClient, tokens: Tokens, db_session: AsyncSession
) -> None:
    client_id = await _register(api, tokens, _partner_body())
    before = await _clients_stream_head(db_session)
    for reason in ("x" * 501, "", "a\x00b"):
        response = await _status(api, tokens, client_id, "suspended", reason)
        assert response.status_code in {400, 422}, response.text
    fetched = await api.get(f"{CLIENTS}/{client_id}", headers=tokens.operator())
    assert fetched.json()["status"] == "pending"
    assert await _clients_stream_head(db_session) == before
