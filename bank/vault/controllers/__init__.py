"""The vault's Litestar controllers: thin, no SQL; their services come in through `Provide`
(bank.vault.deps)."""

# The examples the OpenAPI document shows for the vault's bodies, registered on import.
from bank.vault import examples as _examples  # noqa: F401
