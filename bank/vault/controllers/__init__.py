"""The vault's Litestar controllers: thin, no SQL; their services come in through `Provide`
(bank.vault.deps)."""
