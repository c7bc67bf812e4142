"""Every package's models, gathered so Alembic's autogenerate sees the whole schema."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import MetaData, Table

from bank.app import PACKAGES
from bank.package import Package


def metadata_of(packages: Iterable[Package[Any]]) -> tuple[MetaData, ...]:
    """The metadata of every table the packages' models modules declare (the kernel's `Base`
    for all of today's; a package on a metadata of its own brings it), each once, in order."""
    found: dict[int, MetaData] = {}
    for package in packages:
        for module in package.models:  # importing it declared its tables
            for value in vars(module).values():
                table = value if isinstance(value, Table) else getattr(value, "__table__", None)
                if isinstance(table, Table):
                    found.setdefault(id(table.metadata), table.metadata)
    return tuple(found.values())


METADATA = metadata_of(PACKAGES)
