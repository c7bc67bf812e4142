"""`bank clients ...` and `bank keys rotate-signing`: operator commands on the database."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

from bank.audit import Principal as AuditPrincipal
from bank.auth.clients import Attribution, Certification, ClientRegistry, Registration
from bank.auth.keys import SigningKeys
from bank.auth.models import ClientKind, ClientStatus
from bank.crypto.keyring import LocalKeyring
from bank.db import Database
from bank.errors import DomainError
from bank.settings import Settings

T = TypeVar("T")


def run_in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction; a domain error becomes a clean CLI error."""

    async def run() -> T:
        async with Database.opened(settings) as database, database.unit_of_work() as session:
            return await work(session)

    try:
        return asyncio.run(run())
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None


def _by(reason: str | None) -> Attribution:
    """The audit log's principal for a command: `cli` and the login user running it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment or the password database
        user = "unknown"
    return Attribution(principal=AuditPrincipal(type="cli", id=user), reason=reason)


_reason = click.option(
    "--reason",
    default=None,
    help="Why (at most 500 characters); kept in the audit log with the login user",
)


def _certification(text: str) -> Certification:
    try:
        name, number, expires = text.rsplit(":", 2)
        return Certification(name=name, number=number, expires_on=date.fromisoformat(expires))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not NAME:NUMBER:YYYY-MM-DD") from None


def _jwks(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"cannot read a JWKS from {path}: {exc}") from None
    if not isinstance(document, dict):
        raise click.BadParameter(f"{path} does not hold a JWK Set")
    return document


def register_commands(main: click.Group, settings_for: Callable[[], Any]) -> None:
    """Attach the commands; `settings_for()` yields Settings with a database URL."""

    @main.group(name="clients")
    def clients() -> None:
        """The client registry: partners, data sources, apps."""

    def confidential(kind: ClientKind) -> Callable[..., None]:
        @click.option("--name", required=True)
        @click.option("--corporate-number", required=True, help="13-digit 法人番号")
        @click.option(
            "--contact", "contact_email", required=True, help="The company's contact desk"
        )
        @click.option(
            "--certification",
            "certifications",
            multiple=True,
            type=_certification,
            help="NAME:NUMBER:YYYY-MM-DD, e.g. Pマーク:17000123:2027-03-31",
        )
        @click.option("--jwks-file", type=click.Path(path_type=Path, dir_okay=False))
        @click.option("--jwks-uri")
        @click.option("--scope", "scopes", multiple=True, required=True)
        @click.option(
            "--feed",
            "feeds",
            multiple=True,
            help="Data sources: a transit operator slug or 8-digit insurer number it pushes for",
        )
        @_reason
        def add(**options: Any) -> None:
            registration = Registration(
                kind=kind,
                name=options["name"],
                scopes=tuple(options["scopes"]),
                corporate_number=options["corporate_number"],
                contact_email=options["contact_email"],
                certifications=tuple(options["certifications"]),
                jwks=_jwks(options["jwks_file"]),
                jwks_uri=options["jwks_uri"],
                feeds=tuple(options["feeds"]),
            )
            with settings_for() as settings:
                client = run_in_transaction(
                    settings,
                    lambda session: ClientRegistry(session).register(
                        registration, by=_by(options["reason"])
                    ),
                )
            click.echo(client.client_id)

        return add

    clients.command(name="add-partner", help="Register a partner (pending until activated).")(
        confidential(ClientKind.PARTNER)
    )
    clients.command(name="add-source", help="Register a data source (pending until activated).")(
        confidential(ClientKind.SOURCE)
    )

    @clients.command(name="add-app")
    @click.option(
        "--kind",
        type=click.Choice([ClientKind.RESIDENT_APP.value, ClientKind.OPERATOR_CONSOLE.value]),
        required=True,
    )
    @click.option("--name", required=True)
    @click.option(
        "--redirect-uri",
        "redirect_uris",
        multiple=True,
        required=True,
        help="Redirect URI: https, a private-use scheme, or loopback http (127.0.0.1 or [::1], "
        "matched on any port) (RFC 8252); matched exactly otherwise",
    )
    @click.option("--scope", "scopes", multiple=True, required=True)
    @_reason
    def add_app(
        kind: str,
        name: str,
        redirect_uris: tuple[str, ...],
        scopes: tuple[str, ...],
        reason: str | None,
    ) -> None:
        """Register a public client (the residents' app or the operators' console): PKCE, no
        keys or secrets. Pending until activated."""
        registration = Registration(
            kind=ClientKind(kind), name=name, scopes=scopes, redirect_uris=redirect_uris
        )
        with settings_for() as settings:
            client = run_in_transaction(
                settings,
                lambda session: ClientRegistry(session).register(registration, by=_by(reason)),
            )
        click.echo(client.client_id)

    def status_command(name: str, target: ClientStatus, help_text: str) -> None:
        @clients.command(name=name, help=help_text)
        @click.argument("client_id")
        @_reason
        def change(client_id: str, reason: str | None) -> None:
            with settings_for() as settings:
                run_in_transaction(
                    settings,
                    lambda session: ClientRegistry(session).set_status(
                        client_id, target, by=_by(reason)
                    ),
                )
            click.echo(f"{client_id} is {target.value}")

    status_command("activate", ClientStatus.ACTIVE, "Activate a vetted client.")
    status_command("suspend", ClientStatus.SUSPENDED, "Suspend a client and revoke its tokens.")

    @clients.command(name="list")
    def list_clients() -> None:
        """Every client with its kind and status."""
        with settings_for() as settings:
            rows = run_in_transaction(settings, lambda session: ClientRegistry(session).list())
        for row in rows:
            click.echo(f"{row.client_id}\t{row.kind}\t{row.status}\t{row.name}")

    @main.group(name="keys")
    def keys() -> None:
        """Key management."""

    @keys.command(name="rotate-signing")
    def rotate_signing() -> None:
        """Sign with a new key; the old one stays published until its tokens expire."""
        with settings_for() as settings:
            kid = asyncio.run(_rotate_signing(settings))
        click.echo(f"new signing key {kid}")


async def _rotate_signing(settings: Settings) -> str:
    # The key is created and committed in its own transaction by SigningKeys itself.
    async with Database.opened(settings) as database:
        signing = SigningKeys(LocalKeyring.from_settings(settings), database.sessions)
        return await signing.rotate()
