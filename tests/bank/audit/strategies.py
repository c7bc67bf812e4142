"""Hypothesis strategies for audit entries and for single-field tampering."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from bank.audit.rules import Entry, Principal

# Anything PostgreSQL text can hold: no NUL, no lone surrogates.
TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=40,
)
WORD = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
ACTION = st.builds(lambda a, b: f"{a}.{b}", WORD, WORD)
DETAILS = st.dictionaries(
    WORD,
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**53) + 1, 2**53 - 1),
        TEXT,
        st.lists(st.one_of(st.integers(0, 10**6), TEXT), max_size=3),
    ),
    max_size=4,
)


@st.composite
def appends(draw: st.DrawFn) -> dict[str, Any]:
    """The arguments of one `AuditLog.append` (stream aside)."""
    return {
        "principal": Principal(type=draw(WORD), id=draw(TEXT)),
        "action": draw(ACTION),
        "target": draw(TEXT),
        "reason": draw(st.none() | TEXT),
        "details": draw(DETAILS),
    }


FIELDS = (
    "stream",
    "seq",
    "occurred_at",
    "principal_type",
    "principal_id",
    "action",
    "target",
    "reason",
    "details",
    "prev_hash",
    "hash",
)


@st.composite
def changed_value(draw: st.DrawFn, entry: Entry, field: str) -> Any:
    """A value for one column of `entry` that differs from what it holds."""
    current: Any = {
        "principal_type": entry.principal.type,
        "principal_id": entry.principal.id,
    }.get(field, getattr(entry, field, None))
    if field == "stream":
        return entry.stream + "-moved"
    if field == "seq":
        return entry.seq + draw(st.integers(1_000, 10_000))
    if field == "occurred_at":
        return entry.occurred_at + timedelta(microseconds=draw(st.integers(1, 10**9)))
    if field in {"prev_hash", "hash"}:
        return draw(st.from_regex(r"[0-9a-f]{64}", fullmatch=True).filter(lambda h: h != current))
    if field == "principal_type":
        return draw(WORD.filter(lambda w: w != current))
    if field == "action":
        return draw(ACTION.filter(lambda a: a != current))
    if field == "details":
        return draw(DETAILS.filter(lambda d: d != current))
    if field == "reason":
        return draw((st.none() | TEXT).filter(lambda r: r != current))
    return draw(TEXT.filter(lambda t: t != current))
