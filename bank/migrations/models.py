"""Every package's models, imported so Alembic's autogenerate sees the whole schema."""

from bank.audit import models as audit_models
from bank.auth import models as auth_models
from bank.identity import models as identity_models
from bank.vault import keystore as vault_keystore
from bank.vault import models as vault_models

__all__ = ["audit_models", "auth_models", "identity_models", "vault_keystore", "vault_models"]
