"""What background jobs need besides the job queue: the database and the vault's key store.

Handed to procrastinate as the worker's `additional_context` by `bank worker` and by the
embedded worker of `serve --demo`, so a job uses the same session factory and KeyProvider as
the web process that enqueued it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from procrastinate import JobContext

from bank.crypto.providers import key_provider_from_settings
from bank.db import Database
from bank.settings import Settings
from bank.vault.keystore import KeyStore


@dataclass(frozen=True)
class WorkerResources:
    settings: Settings
    database: Database
    keystore: KeyStore

    def as_context(self) -> dict[str, Any]:
        return {"resources": self}


def keystore_from_settings(settings: Settings) -> KeyStore:
    return KeyStore(key_provider_from_settings(settings))


def resources_of(context: JobContext) -> WorkerResources:
    resources = context.additional_context.get("resources")
    if not isinstance(resources, WorkerResources):
        raise RuntimeError("This job needs a worker started by `bank worker` or the app.")
    return resources
