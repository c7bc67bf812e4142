"""A verified access token is remembered until it expires, and only that exact token is."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bank.auth.principals import Principal, PrincipalType
from bank.auth.tokens import VerifiedTokens


def _principal(expires_at: int) -> Principal:
    return Principal(
        type=PrincipalType.PARTNER,
        subject="partner-1",
        client_id="partner-1",
        scopes=frozenset({"partner:data"}),
        token_id="jti-1",
        issued_at=expires_at - 600,
        expires_at=expires_at,
    )


@given(expires_at=st.integers(1, 2**40), now=st.integers(0, 2**40))
def test_a_remembered_token_is_served_only_before_it_expires(expires_at: int, now: int) -> None:
    verified = VerifiedTokens()
    verified.remember("header.payload.signature", _principal(expires_at))
    served = verified.get("header.payload.signature", now)
    assert (served is not None) == (now < expires_at)
    if served is None:
        assert verified.get("header.payload.signature", 0) is None  # and it is forgotten


@given(token=st.text(min_size=1, max_size=50), other=st.text(min_size=1, max_size=50))
def test_only_the_exact_token_is_remembered(token: str, other: str) -> None:
    verified = VerifiedTokens()
    verified.remember(token, _principal(10_000))
    assert (verified.get(other, 0) is not None) == (other == token)


def test_the_oldest_tokens_go_first_when_full() -> None:
    verified = VerifiedTokens(max_entries=3)
    for n in range(5):
        verified.remember(f"token-{n}", _principal(10_000))
    assert [verified.get(f"token-{n}", 0) is not None for n in range(5)] == [
        False, False, True, True, True,
    ]  # fmt: skip
