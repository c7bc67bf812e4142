"""The vault's settings section, read from `BANK_VAULT__<FIELD>` (bank.package.load_sections)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bank.vault.rules.kek_schedule import KekSchedule


class VaultSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BANK_VAULT__", extra="ignore", frozen=True)

    kek_rotation_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="The scheduled job makes a new KEK version when the current one is this old.",
    )
    backup_retention_days: int = Field(
        default=35,
        ge=1,
        le=3650,
        description=(
            "How long backups (base backups, dumps) are kept: a replaced KEK version is destroyed "
            "this long after it was replaced, so no backup inside the retention loses its keys."
        ),
    )
    exports_per_day: int = Field(
        default=5,
        ge=1,
        le=1000,
        description=(
            "How many exports a resident may ask for in one local day (BANK_LOCAL_TIMEZONE); "
            "beyond it the request is answered 429 `export-limit-reached` until midnight."
        ),
    )

    @model_validator(mode="after")
    def _retention_covers_the_interval(self) -> VaultSettings:
        if self.backup_retention_days < self.kek_rotation_days:
            raise ValueError(
                "BANK_VAULT__BACKUP_RETENTION_DAYS must be at least BANK_VAULT__KEK_ROTATION_DAYS"
            )
        return self

    def kek_schedule(self) -> KekSchedule:
        return KekSchedule(
            rotation_interval=timedelta(days=self.kek_rotation_days),
            backup_retention=timedelta(days=self.backup_retention_days),
        )
