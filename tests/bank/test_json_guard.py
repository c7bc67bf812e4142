"""The raw-JSON checks refuse exactly the duplicate keys, whatever the strings hold."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bank.http.json_guard import (
    DuplicateKey,
    check_body_after_decoding,
    check_body_before_decoding,
)

# Strings as clients send them, often with JSON's own punctuation, which is what could fool a
# check that reads raw bytes. Without quotes and backslashes a body has no escapes and takes the
# fast path (ensure_ascii escapes the rest, for the full one).
_TEXT = st.text(
    st.sampled_from(":,{}[] ak")
    | st.characters(blacklist_categories=["Cs"], blacklist_characters='\x00"\\')
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)


def _check(raw: bytes) -> None:
    skeleton = check_body_before_decoding(raw)
    check_body_after_decoding(raw, skeleton, msgspec.json.decode(raw))


@settings(max_examples=300)
@given(document=_JSON, ascii_only=st.booleans())
def test_a_document_without_repeated_keys_passes(document: Any, ascii_only: bool) -> None:
    _check(json.dumps(document, ensure_ascii=ascii_only).encode())


@given(key=_TEXT, first=_JSON, second=_JSON, others=st.dictionaries(_TEXT, _JSON, max_size=3))
def test_a_repeated_key_is_refused_wherever_it_is(
    key: str, first: Any, second: Any, others: dict[str, Any]
) -> None:
    members = [json.dumps(k) + ":" + json.dumps(v) for k, v in others.items() if k != key]
    members[len(members) // 2 : len(members) // 2] = [
        json.dumps(key) + ":" + json.dumps(first),
        json.dumps(key, ensure_ascii=False) + ":" + json.dumps(second),
    ]
    raw = ('{"items": [{' + ", ".join(members) + "}]}").encode()
    with pytest.raises(DuplicateKey):
        _check(raw)
