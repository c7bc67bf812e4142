"""The records vault: residents' steps, transit rides and checkups, sealed per resident."""

from __future__ import annotations

from bank.crypto import keystore
from bank.crypto.keystore import KeyStore
from bank.package import Package
from bank.vault import cli, models
from bank.vault.controllers.exports import ExportsController
from bank.vault.controllers.ingest import CheckupIngestController, IngestController
from bank.vault.controllers.records import CheckupsController, LinksController, TransitController
from bank.vault.controllers.steps import StepsController, erase_me
from bank.vault.demo import seed_demo_records
from bank.vault.erasure import erase_records
from bank.vault.exports import export_records
from bank.vault.jobs import vault_tasks
from bank.vault.settings import VaultSettings

PACKAGE: Package[KeyStore] = Package(
    name="vault",
    controllers=(
        StepsController,
        LinksController,
        TransitController,
        CheckupsController,
        ExportsController,
        IngestController,
        CheckupIngestController,
        erase_me,
    ),
    commands=cli.register_commands,
    jobs=vault_tasks,
    models=(models, keystore),
    settings=VaultSettings,
    erase=erase_records,
    export=export_records,
    seed=seed_demo_records,
)
