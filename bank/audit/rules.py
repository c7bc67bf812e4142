"""The audit log's pure rules: what an entry may hold, its canonical form, its hash, chain checks.

Canonical form (version 1), so that an auditor can recompute every hash without this code:

    hash = lowercase hex of SHA-256 over the ASCII bytes of this JSON object:

    {"action":A,"details":D,"occurred_at":T,"prev_hash":P,"principal":{"id":I,"type":Y},
     "reason":R,"seq":N,"stream":S,"target":G,"v":1}

    written with every object's keys sorted (all keys are ASCII, so code-point order), no
    whitespace at all, and every non-ASCII character escaped as \\uXXXX (lowercase hex; UTF-16
    surrogate pairs beyond the BMP), as Python's
    `json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)` writes it.
    T is the UTC time as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (always six fractional digits). R is a
    string or null. N is the entry's sequence number in its stream (1, 2, 3, ... with no gaps).
    D holds only strings, integers (|n| < 2**53), booleans, null and lists of those: never
    floats, whose text forms differ between languages. P is the previous entry's hash; the
    first entry of every stream has P = GENESIS_HASH, 64 zeros.

A chain is intact when its entries, in sequence order, number 1..n without gaps, each P is the
hash of the entry before, and each stored hash equals the recomputed one. Deleting the newest
entries of a stream leaves a shorter intact chain: `bank audit verify` prints each stream's head
hash so that it can be recorded outside the database and compared later.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bank.audit.errors import InvalidAuditEntry

FORMAT_VERSION = 1
GENESIS_HASH = "0" * 64
MAX_REASON_CHARS = 500
MAX_DETAILS_BYTES = 2000

_STREAM = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+$")
_PRINCIPAL_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_DETAIL_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")
_MAX_ID_CHARS = 200
_MAX_SAFE_INT = 2**53 - 1

DetailValue = str | int | bool | None | Sequence[str | int | bool | None]


@dataclass(frozen=True)
class Principal:
    """Who acted: e.g. ("operator", account id) or ("cli", "cli:<os user>")."""

    type: str
    id: str


@dataclass(frozen=True)
class Entry:
    """One audit entry with its place in its stream's chain."""

    stream: str
    seq: int
    occurred_at: datetime
    principal: Principal
    action: str
    target: str
    reason: str | None
    details: Mapping[str, DetailValue]
    prev_hash: str
    hash: str


def _check_text(name: str, value: str, max_chars: int) -> None:
    if not value or len(value) > max_chars:
        raise InvalidAuditEntry(f"{name} must have 1 to {max_chars} characters.")
    if "\x00" in value:
        raise InvalidAuditEntry(f"{name} must not contain NUL.")


def _check_detail(key: str, value: object) -> None:
    if isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, list | tuple):
                raise InvalidAuditEntry(f"details.{key} nests lists.")
            _check_detail(key, item)
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise InvalidAuditEntry(f"details.{key} is beyond ±(2**53 - 1).")
    elif isinstance(value, str):
        if len(value) > _MAX_ID_CHARS or "\x00" in value:
            raise InvalidAuditEntry(f"details.{key}: at most {_MAX_ID_CHARS} characters, no NUL.")
    else:
        raise InvalidAuditEntry(f"details.{key} must be a string, integer, boolean or null.")


def check_entry(
    *,
    stream: str,
    principal: Principal,
    action: str,
    target: str,
    reason: str | None,
    details: Mapping[str, DetailValue],
) -> None:
    """Refuse (InvalidAuditEntry) what the log must not hold: unbounded or NUL text, floats."""
    if not _STREAM.match(stream):
        raise InvalidAuditEntry("stream must be lowercase letters, digits, '-' or '_'.")
    if not _ACTION.match(action) or len(action) > 100:
        raise InvalidAuditEntry("action must be dotted lowercase words, e.g. client.suspended.")
    if not _PRINCIPAL_TYPE.match(principal.type):
        raise InvalidAuditEntry("principal type must be a lowercase word.")
    _check_text("principal id", principal.id, _MAX_ID_CHARS)
    _check_text("target", target, _MAX_ID_CHARS)
    if reason is not None:
        _check_text("reason", reason, MAX_REASON_CHARS)
    for key, value in details.items():
        if not isinstance(key, str) or not _DETAIL_KEY.match(key):
            raise InvalidAuditEntry("details keys must be lowercase identifiers.")
        _check_detail(key, value)
    if len(canonical_json(dict(details))) > MAX_DETAILS_BYTES:
        raise InvalidAuditEntry(f"details must encode to at most {MAX_DETAILS_BYTES} bytes.")


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise InvalidAuditEntry("occurred_at must be timezone-aware.")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    *,
    stream: str,
    seq: int,
    occurred_at: datetime,
    principal: Principal,
    action: str,
    target: str,
    reason: str | None,
    details: Mapping[str, object],
    prev_hash: str,
) -> str:
    document = {
        "action": action,
        "details": dict(details),
        "occurred_at": format_time(occurred_at),
        "prev_hash": prev_hash,
        "principal": {"id": principal.id, "type": principal.type},
        "reason": reason,
        "seq": seq,
        "stream": stream,
        "target": target,
        "v": FORMAT_VERSION,
    }
    return hashlib.sha256(canonical_json(document)).hexdigest()


def recompute(entry: Entry) -> str:
    return entry_hash(
        stream=entry.stream,
        seq=entry.seq,
        occurred_at=entry.occurred_at,
        principal=entry.principal,
        action=entry.action,
        target=entry.target,
        reason=entry.reason,
        details=entry.details,
        prev_hash=entry.prev_hash,
    )


@dataclass(frozen=True)
class Break:
    """Where a chain first stops holding, and how."""

    seq: int
    problem: str


class ChainCheck:
    """Checks one stream's entries fed in sequence order, one at a time (memory stays flat)."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.count = 0
        self.head = GENESIS_HASH
        self.broken: Break | None = None

    def feed(self, entry: Entry) -> None:
        if self.broken is not None:
            return
        expected = self.count + 1
        if entry.seq != expected:
            self.broken = Break(expected, f"entry {expected} is missing (next is {entry.seq})")
        elif entry.prev_hash != self.head:
            self.broken = Break(entry.seq, "does not chain from the entry before")
        elif not _HASH.match(entry.hash) or recompute(entry) != entry.hash:
            self.broken = Break(entry.seq, "its content does not match its hash")
        else:
            self.count = expected
            self.head = entry.hash


def check_chain(stream: str, entries: Sequence[Entry]) -> ChainCheck:
    check = ChainCheck(stream)
    for entry in entries:
        check.feed(entry)
    return check
