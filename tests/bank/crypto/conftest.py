"""The SoftHSM2 token fixture for the PKCS#11 provider tests (tests/bank/crypto/softhsm.py)."""

from __future__ import annotations

from tests.bank.crypto.softhsm import softhsm

__all__ = ["softhsm"]
