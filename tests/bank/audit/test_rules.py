"""The audit log's pure rules: the documented canonical form, refusals, and chain checks."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank.audit.errors import InvalidAuditEntry
from bank.audit.rules import (
    GENESIS_HASH,
    Entry,
    Principal,
    check_chain,
    check_entry,
    recompute,
)
from tests.bank.audit.strategies import FIELDS, appends, changed_value

START = datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=UTC)


def chain(stream: str, arguments: list[dict[str, Any]]) -> list[Entry]:
    entries: list[Entry] = []
    for index, args in enumerate(arguments):
        unsealed = Entry(
            stream=stream,
            seq=index + 1,
            occurred_at=START + timedelta(seconds=index),
            prev_hash=entries[-1].hash if entries else GENESIS_HASH,
            hash="",
            **args,
        )
        entries.append(dataclasses.replace(unsealed, hash=recompute(unsealed)))
    return entries


def test_the_hash_is_sha256_of_the_documented_canonical_json() -> None:
    # What an outside auditor would write from the module docstring, without bank.audit.
    entry = chain(
        "clients",
        [
            {
                "principal": Principal("operator", "3f1c2a9e"),
                "action": "client.suspended",
                "target": "partner-abc",
                "reason": "契約違反の疑い",
                "details": {"to": "suspended", "from": "active"},
            }
        ],
    )[0]
    document = (
        '{"action":"client.suspended","details":{"from":"active","to":"suspended"},'
        '"occurred_at":"2026-12-07T01:02:03.456789Z","prev_hash":"' + "0" * 64 + '",'
        '"principal":{"id":"3f1c2a9e","type":"operator"},'
        '"reason":"' + json.dumps("契約違反の疑い")[1:-1] + '","seq":1,"stream":"clients",'
        '"target":"partner-abc","v":1}'
    )
    assert "\\u5951" in document  # non-ASCII is escaped
    assert entry.hash == hashlib.sha256(document.encode("ascii")).hexdigest()


def _check(**changes: Any) -> None:
    arguments: dict[str, Any] = {
        "stream": "clients",
        "principal": Principal("operator", "x"),
        "action": "client.suspended",
        "target": "partner-abc",
        "reason": "why",
        "details": {},
    }
    check_entry(**{**arguments, **changes})


@pytest.mark.parametrize(
    "changes",
    [
        {"reason": "x" * 501},
        {"reason": "a\x00b"},
        {"reason": ""},
        {"target": "a\x00b"},
        {"principal": Principal("operator", "a\x00")},
        {"principal": Principal("Operator!", "x")},
        {"action": "suspended"},
        {"stream": "Clients"},
        {"details": {"ratio": 0.5}},
        {"details": {"Bad-Key": 1}},
        {"details": {"n": 2**53}},
        {"details": {"s": "a\x00"}},
        {"details": {"nested": [[1]]}},
        {"details": {"big": ["x" * 200] * 20}},
    ],
)
def test_entries_the_log_must_not_hold_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidAuditEntry):
        _check(**changes)


def test_a_reason_of_500_characters_is_accepted() -> None:
    _check(reason="理" * 500)


@given(st.lists(appends(), min_size=1, max_size=8))
def test_an_untouched_chain_is_intact(arguments: list[dict[str, Any]]) -> None:
    entries = chain("s", arguments)
    check = check_chain("s", entries)
    assert check.broken is None
    assert check.count == len(entries)
    assert check.head == entries[-1].hash


def _modify(entry: Entry, field: str, value: Any) -> Entry:
    if field == "principal_type":
        return dataclasses.replace(entry, principal=Principal(value, entry.principal.id))
    if field == "principal_id":
        return dataclasses.replace(entry, principal=Principal(entry.principal.type, value))
    return dataclasses.replace(entry, **{field: value})


@given(st.lists(appends(), min_size=1, max_size=8), st.sampled_from(FIELDS), st.data())
def test_any_single_field_modification_breaks_the_chain(
    arguments: list[dict[str, Any]], field: str, data: st.DataObject
) -> None:
    entries = chain("s", arguments)
    index = data.draw(st.integers(0, len(entries) - 1))
    tampered = _modify(entries[index], field, data.draw(changed_value(entries[index], field)))
    entries[index] = tampered
    # As the database would return them: grouped by stream, ordered by seq.
    by_stream: dict[str, list[Entry]] = {}
    for entry in sorted(entries, key=lambda e: (e.stream, e.seq)):
        by_stream.setdefault(entry.stream, []).append(entry)
    broken = [check_chain(s, rows).broken for s, rows in by_stream.items()]
    assert any(b is not None for b in broken)


@given(st.lists(appends(), min_size=3, max_size=8), st.data())
def test_a_deleted_or_swapped_entry_breaks_the_chain(
    arguments: list[dict[str, Any]], data: st.DataObject
) -> None:
    entries = chain("s", arguments)
    index = data.draw(st.integers(0, len(entries) - 2))
    deleted = entries[:index] + entries[index + 1 :]
    assert check_chain("s", deleted).broken is not None
    swapped = list(entries)
    swapped[index], swapped[index + 1] = swapped[index + 1], swapped[index]
    assert check_chain("s", swapped).broken is not None
