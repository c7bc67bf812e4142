"""What a job finds in its worker's context: the settings, the database, the vault's keys and
the packages (whose hooks an export job runs).

`WorkerResources` is handed to procrastinate's worker as `additional_context` (bank.workers runs
the worker and knows nothing of its content), so a job uses the same session factory and
KeyProvider as the web process that enqueued it. It lives with the vault because it carries the
vault's `KeyStore`: the kernel's worker must not import the vault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from procrastinate import JobContext
from pydantic_settings import BaseSettings

from bank.crypto.keystore import KeyStore
from bank.db import Database
from bank.package import Package
from bank.settings import Settings


@dataclass(frozen=True)
class WorkerResources:
    settings: Settings
    database: Database
    keystore: KeyStore
    packages: tuple[Package[KeyStore], ...]  # as the composition root lists them
    # Each package's own settings section (bank.package.load_sections), read at start-up: a
    # package's job finds its configuration here, as its controllers do in app.state.sections.
    sections: Mapping[str, BaseSettings] = field(default_factory=dict)

    def section(self, package: str) -> BaseSettings:
        return self.sections[package]

    def as_context(self) -> dict[str, Any]:
        return {"resources": self}


def resources_of(context: JobContext) -> WorkerResources:
    resources = context.additional_context.get("resources")
    if not isinstance(resources, WorkerResources):
        raise RuntimeError("This job needs a worker started by `bank worker` or the app.")
    return resources
