"""What a package brings to the bank (`Package`), assembled by the composition root.

A package (`bank.vault`, tomorrow `consent`) declares in its `__init__.py` one `PACKAGE` naming
its routes, commands, jobs, models and hooks; `bank.app` and `bank.cli` list the packages, and
the code that runs an erasure, an export, the demo seed, the worker or a migration iterates the
packages it is handed without naming one. Adding a package is its folder plus one line there.

The hooks that open residents' records are handed the vault's key store, which the kernel may not
name (it sits a layer above): `Package` is generic in it, and the composition root fixes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from zoneinfo import ZoneInfo

import click
from procrastinate import Blueprint
from pydantic_settings import BaseSettings
from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from bank.settings import Settings

Keys = TypeVar("Keys")

# (session, resident) -> rows destroyed per table (or kind), summed into the erasure receipt. It
# runs in the erasure's transaction after the resident's data key is destroyed and before the
# account row goes; it deletes or detaches what the account's cascade would not reach in time.
EraseHook = Callable[[AsyncSession, uuid.UUID], Awaitable[Mapping[str, int]]]


@dataclass(frozen=True)
class ExportContext:
    """What every package's export hook writes its files by: one time rule for the whole ZIP,
    which its README states. An instant is ISO 8601 in `zone` with its offset, to the second
    (`2026-11-30T08:15:00+09:00`, `instant`); a date is a calendar date in `zone`."""

    zone: ZoneInfo  # the city's (BANK_LOCAL_TIMEZONE)
    generated_at: datetime  # aware: when the export was built

    def instant(self, moment: datetime) -> str:
        if moment.tzinfo is None:
            raise ValueError("an export writes aware datetimes only")
        return moment.astimezone(self.zone).isoformat(timespec="seconds")


# (session, keys, resident, context) -> files of the export ZIP, name -> content, in the order
# written; times written by `context.instant`, CSV files as bank.vault.export_files writes them.
ExportHook = Callable[
    [AsyncSession, Keys, uuid.UUID, ExportContext], Awaitable[Mapping[str, bytes]]
]
# (main group, settings_for) -> None: attaches `bank <package> ...`; settings_for() yields Settings
# with a database URL (an embedded PostgreSQL when none is configured).
CommandsHook = Callable[[click.Group, Callable[[], AbstractContextManager["Settings"]]], None]


@dataclass(frozen=True, kw_only=True)
class Package(Generic[Keys]):
    """One package's contributions; every field but the name is optional."""

    name: str  # also the namespace of its jobs (`<name>:<task>`) and of its settings section
    controllers: Sequence[Any] = ()  # Litestar route handlers: controllers, routers, functions
    commands: CommandsHook | None = None
    jobs: Blueprint | None = None  # tasks and periodic tasks
    models: Sequence[ModuleType] = ()  # modules declaring tables on the kernel's Base
    settings: type[BaseSettings] | None = None  # its section, read from BANK_<NAME>__<FIELD>
    erase: EraseHook | None = None
    export: ExportHook[Keys] | None = None
    # (session, keys, resident, context) -> outcome names, counted into the seed's summary: what
    # the demo city seeds for one synthetic resident whose account exists, in the resident's
    # transaction. The context is the composition root's (`bank.demo.seed.SeedContext`: the
    # resident's synthetic window, the last day seeded, the city's zone), which no package may
    # import: a hook declares as a Protocol what it reads of it (`bank.vault.demo.DemoContext`).
    seed: Callable[[AsyncSession, Keys, uuid.UUID, Any], Awaitable[Iterable[str]]] | None = None


class DuplicateContribution(Exception):
    """Two packages contributed the same name (a package, an export file); the message names it."""


def check_unique(packages: Iterable[Package[Any]]) -> None:
    seen: set[str] = set()
    for package in packages:
        if package.name in seen:
            raise DuplicateContribution(f"two packages are named {package.name!r}")
        seen.add(package.name)


def load_sections(packages: Iterable[Package[Any]]) -> dict[str, BaseSettings]:
    """Every package's settings section, read and validated now (at start-up): a section class
    sets `env_prefix="BANK_<NAME>__"`, so the flat `BANK_*` variables of `Settings` keep their
    names and a package's own are `BANK_VAULT__...`, `BANK_CONSENT__...`."""
    return {package.name: package.settings() for package in packages if package.settings}


async def erase_all(
    packages: Iterable[Package[Any]], session: AsyncSession, resident_id: uuid.UUID
) -> dict[str, int]:
    """Run every package's erase hook in order; rows destroyed per `<package>.<what>`."""
    counts: dict[str, int] = {}
    for package in packages:
        if package.erase is not None:
            for what, count in (await package.erase(session, resident_id)).items():
                counts[f"{package.name}.{what}"] = count
    return counts


async def export_all(
    packages: Iterable[Package[Keys]],
    session: AsyncSession,
    keys: Keys,
    resident_id: uuid.UUID,
    context: ExportContext,
) -> dict[str, bytes]:
    """Every package's export files in order; two packages writing one name is refused."""
    files: dict[str, bytes] = {}
    for package in packages:
        if package.export is None:
            continue
        for name, content in (await package.export(session, keys, resident_id, context)).items():
            if name in files:
                raise DuplicateContribution(f"{package.name} exports {name!r} a second time")
            files[name] = content
    return files
