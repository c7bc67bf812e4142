"""Identity's settings section, read from `BANK_IDENTITY__<FIELD>` (bank.package.load_sections):
how the mail the outbox holds is delivered."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bank.settings import SettingsError


class IdentitySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BANK_IDENTITY__", extra="ignore", frozen=True)

    smtp_host: str | None = Field(
        default=None,
        description=(
            "The SMTP server mail is delivered through. Unset: in development (and tests) mail "
            "stays in the outbox for the development mail sink (/dev/mail, `bank mail list`); "
            "in production `bank serve` and `bank worker` refuse to start without it."
        ),
    )
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_tls: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description=(
            "`starttls` (submission, port 587), `tls` (implicit TLS, port 465) or `none` "
            "(plain; only for a relay on the same host)."
        ),
    )
    smtp_ca_file: Path | None = Field(
        default=None, description="CA certificates to verify the server by (default: the system's)."
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(default=10.0, gt=0, le=120)
    mail_from: str = Field(
        default="no-reply@city-bank.example", description="The From address of the bank's mail."
    )


def check_delivery(environment: str, section: IdentitySettings) -> None:
    """SettingsError if a production bank has no SMTP server: sign-up and password reset mail
    their codes, so without one no resident could finish either (the mail jobs would only
    fail). Development and tests keep mail in the outbox for the mail sink."""
    if environment == "production" and not section.smtp_host:
        raise SettingsError(
            "BANK_IDENTITY__SMTP_HOST: required in production (sign-up and password reset mail "
            "their codes); see deploy/README.md, 'Mail'"
        )
