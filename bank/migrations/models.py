"""Every package's models, imported so Alembic's autogenerate sees the whole schema."""

from bank.auth import models as auth_models
from bank.identity import models as identity_models

__all__ = ["auth_models", "identity_models"]
