"""What the vault's controllers are handed (`Provide`): services built on the request's session."""

from __future__ import annotations

from typing import TypeAlias

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from bank.http.transaction import DbSession
from bank.vault.reader import VaultReader


async def provide_reader(db_session: DbSession, state: State) -> VaultReader:
    return VaultReader(db_session, state.keystore)


READER = {"reader": Provide(provide_reader)}
# Handlers declare `reader: Reader` to receive it (with `dependencies = READER`).
Reader: TypeAlias = NamedDependency[VaultReader]
