"""One settings object for the whole service, read once from `BANK_*` environment variables."""

from __future__ import annotations

from datetime import date, datetime
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg"}


class Settings(BaseSettings):
    """Service configuration. Every field maps to `BANK_<FIELD>`; secrets are masked in repr."""

    model_config = SettingsConfigDict(env_prefix="BANK_", extra="ignore", frozen=True)

    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL. Unset: the CLI starts an embedded PostgreSQL in data_dir.",
    )
    keystore_database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL of a database of the key store's own (residents' wrapped data "
        "keys), so the records cluster's backups never hold keys. Unset: the `keystore` schema "
        "of the main database.",
    )
    data_dir: Path = Field(
        default=Path(".bank-data"), description="Where the embedded PostgreSQL and keys live."
    )
    environment: Literal["development", "production", "test"] = "development"
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL clients use to reach the service."
    )
    max_body_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024, description="Largest request body."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated origins allowed by CORS; empty = off."
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="Comma-separated addresses or networks (CIDR) of the load balancers and "
        "proxies in front: only from these is X-Forwarded-For believed, so sign-in throttles see "
        "residents' own addresses. `*` trusts every peer; empty trusts none. Default: loopback.",
    )
    local_timezone: str = Field(default="Asia/Tokyo", description="Zone for 'day' boundaries.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=5, ge=0, le=200)
    db_statement_timeout_ms: int = Field(default=30_000, ge=100)
    ready_timeout_s: float = Field(default=2.0, gt=0, le=30)
    embedded_worker: bool = Field(default=False, description="Run a job worker inside the web app.")
    master_key: SecretStr | None = Field(
        default=None,
        description="Base64 of 32 random bytes wrapping the bank's own secrets (signing keys). "
        "Unset: a key file is created in data_dir/keys with 0600 permissions.",
    )
    access_token_ttl_s: int = Field(default=600, ge=60, le=600, description="Access token life.")
    password_hash_threads: int | None = Field(
        default=None, ge=1, le=256, description="Password hashes (argon2id, 64 MiB each) run at "
        "once per process, in worker threads off the event loop; unset: one per CPU core."
    )  # fmt: skip
    key_provider: Literal["local", "pkcs11"] = Field(
        default="local",
        description="Where the vault's key-encryption and blind-index keys live: key files in "
        "data_dir/keys/vault (local) or an HSM through PKCS#11 (pkcs11, needs BANK_PKCS11_*).",
    )
    pkcs11_module: Path | None = Field(
        default=None, description="The PKCS#11 module (.so) of the HSM, for key_provider=pkcs11."
    )
    pkcs11_token_label: str | None = Field(
        default=None, description="Label of the HSM token holding the bank's keys."
    )
    pkcs11_pin: SecretStr | None = Field(default=None, description="User PIN of that token.")
    demo_residents: int = Field(
        default=300, ge=0, le=100_000, description="`serve --demo`: synthetic residents seeded "
        "into an empty database (0: none)."
    )  # fmt: skip
    demo_days: int = Field(
        default=90, ge=1, le=5 * 365, description="`serve --demo`: days of records seeded."
    )

    def local_today(self) -> date:
        """The city's date now: a "day" of steps or a future exam date is judged by it."""
        return datetime.now(ZoneInfo(self.local_timezone)).date()

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_absolute(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"origin {origin!r} must start with http:// or https://")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [entry.strip() for entry in value.split(",") if entry.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: list[str]) -> list[str]:
        # uvicorn takes anything it cannot parse as a literal host name and then never matches
        # it: a typo would silently trust nobody (or the wrong network). Refuse it here instead.
        if value == ["*"]:
            return value
        for entry in value:
            try:
                ip_network(entry)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (CIDR without host bits), "
                    "and `*` stands alone"
                ) from None
        return value

    @field_validator("local_timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url_is_absolute(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("database_url", "keystore_database_url")
    @classmethod
    def _is_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:
            url = make_url(value.get_secret_value())
        except ArgumentError:
            raise ValueError("is not a database URL") from None
        if url.drivername not in _POSTGRES_DRIVERS:
            raise ValueError(f"PostgreSQL only; got the {url.get_backend_name()!r} dialect")
        return value

    @model_validator(mode="after")
    def _pkcs11_is_complete(self) -> Settings:
        if self.key_provider != "pkcs11":
            return self
        named = {
            "BANK_PKCS11_MODULE": self.pkcs11_module,
            "BANK_PKCS11_TOKEN_LABEL": self.pkcs11_token_label,
            "BANK_PKCS11_PIN": self.pkcs11_pin,
        }
        missing = [name for name, value in named.items() if not value]  # unset or empty
        if missing:
            raise ValueError(f"BANK_KEY_PROVIDER=pkcs11 also needs {', '.join(missing)}")
        if self.pkcs11_module is not None and not self.pkcs11_module.is_file():
            raise ValueError(f"BANK_PKCS11_MODULE: no PKCS#11 module at {self.pkcs11_module}")
        return self

    def async_database_url(self) -> URL:
        """The database URL with the asyncpg driver, which the web app and migrations use."""
        if self.database_url is None:
            raise RuntimeError("BANK_DATABASE_URL is not set and no embedded database was started")
        return as_asyncpg(self.database_url.get_secret_value())

    def async_keystore_url(self) -> URL | None:
        """The key store's own database (asyncpg), or None: the main database's `keystore`."""
        if self.keystore_database_url is None:
            return None
        return as_asyncpg(self.keystore_database_url.get_secret_value())


def as_asyncpg(url: str) -> URL:
    return make_url(url).set(drivername="postgresql+asyncpg")


def as_libpq(url: str | URL) -> str:
    """A plain `postgresql://` conninfo for libpq clients (psycopg, used by the job worker)."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class SettingsError(Exception):
    """Start-up configuration is invalid; the message names every bad variable."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_input=False, include_url=False):
            field = ".".join(str(part) for part in error["loc"])
            # A check across fields has no location; its message names the variables.
            lines.append(f"BANK_{field.upper()}: {error['msg']}" if field else error["msg"])
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None
