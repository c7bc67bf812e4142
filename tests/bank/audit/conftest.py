"""Audit tests: a stream of their own, and tampering with rows behind the trigger's back."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from bank.audit.rules import Principal

OPERATOR = Principal(type="operator", id="3f1c2a9e-8d4b-4c6a-9e1f-2b7d5a0c4e81")


def new_stream() -> str:
    return f"test-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def stream() -> str:
    return new_stream()


async def tamper(connection: AsyncConnection, sql: str, **params: Any) -> None:
    """Change audit rows for real, as an owner who switched the trigger off would."""
    await connection.execute(
        text("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only")
    )
    await connection.execute(text(sql), params)
    await connection.execute(
        text("ALTER TABLE audit_entries ENABLE ALWAYS TRIGGER audit_entries_append_only")
    )
