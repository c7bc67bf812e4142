"""The records vault: residents' steps, transit rides and checkups, sealed per resident."""

from __future__ import annotations

from bank.package import Package
from bank.vault import cli, keystore, models
from bank.vault.api import StepsController, erase_me
from bank.vault.erasure import erase_records
from bank.vault.exports import export_records, vault_tasks
from bank.vault.exports_api import ExportsController
from bank.vault.ingest_api import CheckupIngestController, IngestController
from bank.vault.keystore import KeyStore
from bank.vault.records_api import CheckupsController, LinksController, TransitController

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
    erase=erase_records,
    export=export_records,
)
