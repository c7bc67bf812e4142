"""What the vault's controllers are handed (`Provide`): services on the request's session.

A controller names the services it uses in `dependencies` and receives them by parameter name
(`reader: Reader`, `links: LinksService`, ...); none of them takes the session or the app state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TypeAlias
from zoneinfo import ZoneInfo

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from bank.http.transaction import DbSession
from bank.identity.accounts import Accounts
from bank.identity.throttle import Throttles
from bank.vault.erasure import ResidentErasure
from bank.vault.exports import Exports
from bank.vault.jobs import enqueue_export_build
from bank.vault.links import Links
from bank.vault.reader import VaultReader
from bank.vault.settings import VaultSettings
from bank.vault.sources import SourcePushes
from bank.vault.steps import StepPushes


async def provide_reader(state: State) -> AsyncIterator[VaultReader]:
    """A reader on an autocommitting session of its own, not the request's transaction: the
    routes that read write nothing, and a read needs no BEGIN or COMMIT round trips (two of a
    month's read's five; docs/decisions.md). Each statement sees what was committed when it
    ran, which a record's read tolerates: a key is committed before anything sealed under it
    and only erasure deletes keys (then nothing of the resident opens, as it should)."""
    async with state.database.autocommit_sessions() as session:
        yield VaultReader(session, state.keystore)


async def provide_links(db_session: DbSession, state: State) -> Links:
    return Links(db_session, state.keystore)


async def provide_step_pushes(db_session: DbSession, state: State) -> StepPushes:
    return StepPushes(db_session, state.keystore, today=state.settings.local_today)


async def provide_source_pushes(db_session: DbSession, state: State) -> SourcePushes:
    return SourcePushes(
        db_session, state.keystore, zone=ZoneInfo(state.settings.local_timezone),
        now=lambda: datetime.now(UTC), today=state.settings.local_today,
    )  # fmt: skip


async def provide_exports(db_session: DbSession, state: State) -> Exports:
    section = state.sections["vault"]
    assert isinstance(section, VaultSettings)  # read and validated at start-up
    return Exports(
        db_session, state.keystore, enqueue_build=enqueue_export_build,
        per_day=section.exports_per_day, zone=ZoneInfo(state.settings.local_timezone),
    )  # fmt: skip


async def provide_erasure(db_session: DbSession, state: State) -> ResidentErasure:
    accounts = Accounts(db_session, state.account_secrets, Throttles(state.database))
    return ResidentErasure(db_session, state.keystore, accounts, state.packages)


def provides(*names: str) -> dict[str, Provide]:
    """The `dependencies` of a controller using these services."""
    return {name: _PROVIDERS[name] for name in names}


_PROVIDERS: dict[str, Provide] = {
    "reader": Provide(provide_reader),
    "links": Provide(provide_links),
    "step_pushes": Provide(provide_step_pushes),
    "source_pushes": Provide(provide_source_pushes),
    "exports": Provide(provide_exports),
    "erasure": Provide(provide_erasure),
}

# Handlers declare these to receive the services (Litestar resolves them by name).
Reader: TypeAlias = NamedDependency[VaultReader]
LinksService: TypeAlias = NamedDependency[Links]
StepPushesService: TypeAlias = NamedDependency[StepPushes]
SourcePushesService: TypeAlias = NamedDependency[SourcePushes]
ExportsService: TypeAlias = NamedDependency[Exports]
ErasureService: TypeAlias = NamedDependency[ResidentErasure]
