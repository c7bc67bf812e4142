"""Opaque high-entropy tokens (codes, refresh tokens, session ids): made here, stored as digests."""

from __future__ import annotations

import hashlib
import secrets


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    """Refresh tokens, codes and session ids are high-entropy: SHA-256 is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()
