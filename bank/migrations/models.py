"""Every package's models, imported so Alembic's autogenerate sees the whole schema."""

from types import ModuleType

from bank.app import PACKAGES

# Importing a models module declares its tables on the kernel's Base; the packages name theirs.
MODULES: tuple[ModuleType, ...] = tuple(module for package in PACKAGES for module in package.models)

__all__ = ["MODULES"]
