"""The demo's sign-ins and its residents' app, found again at any time: `bank demo accounts`,
the lines `bank serve --demo` prints at every start, the landing page in development.

The demo residents' passwords are stored nowhere: the seed derives each from the city's seed
and the resident's index (`bank.demo.synth_people.password`), so they are derived again here,
and a sign-in is listed when its account exists. (A resident who changed the password since
has their own; the listing cannot know it without a password hash per line.) The demo app is
the residents' app client the demo registered under `DEMO_APP_NAME`, read from the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.clients import ClientRegistry, Registration, redirect_uri_is_acceptable
from bank.auth.models import ClientKind, ClientStatus, OAuthClient
from bank.db import Database
from bank.demo.synth_people import make_resident
from bank.identity.models import Account
from bank.identity.protect import AccountSecrets, normalise_email
from bank.settings import Settings

DEMO_SEED = 2026  # the city `bank serve --demo` seeds
DEMO_SIGN_INS = 5  # how many of its residents get a password (`--sign-in-accounts`)
DEMO_APP_NAME = "Demo residents' app"
DEMO_APP_SCOPES = ("account", "records:read", "records:write")
# A native app's redirects: a loopback listener on any port, and a private-use scheme.
NATIVE_REDIRECTS = ("http://127.0.0.1:8080/callback", "jp.example.citybank.demo:/oauth/callback")
# In development the bank serves two landing places of its own for the demo app's code.
DEV_CALLBACK_PATH = "/dev/callback"  # shows the code and the token request (bank.welcome)
SWAGGER_REDIRECT_PATH = "/docs/oauth2-redirect.html"  # Swagger UI's, for its Authorize button


def demo_app_redirects(settings: Settings) -> tuple[str, ...]:
    """The demo app's redirect URIs: the native app's everywhere and, in development, the bank's
    own callback page and Swagger UI's redirect page at the public URL (first, as printed)."""
    if settings.environment != "development":
        return NATIVE_REDIRECTS
    base = settings.public_url
    own = (f"{base}{DEV_CALLBACK_PATH}", f"{base}{SWAGGER_REDIRECT_PATH}")
    # A public URL a redirect may not use (`localhost`, plain http elsewhere) adds none.
    return (*(uri for uri in own if redirect_uri_is_acceptable(uri)), *NATIVE_REDIRECTS)


@dataclass(frozen=True)
class DemoSignIn:
    email: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class DemoApp:
    client_id: str
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class DemoAccounts:
    sign_ins: tuple[DemoSignIn, ...]
    app: DemoApp | None

    @property
    def empty(self) -> bool:
        return not self.sign_ins and self.app is None


def _as_demo_app(client: OAuthClient) -> DemoApp:
    return DemoApp(client.client_id, tuple(client.redirect_uris), tuple(client.scopes))


async def _demo_client(session: AsyncSession) -> OAuthClient | None:
    """The oldest active residents' app registered under the demo's name."""
    found: OAuthClient | None = await session.scalar(
        select(OAuthClient)
        .where(
            OAuthClient.name == DEMO_APP_NAME,
            OAuthClient.kind == ClientKind.RESIDENT_APP.value,
            OAuthClient.status == ClientStatus.ACTIVE.value,
        )
        .order_by(OAuthClient.created_at)
        .limit(1)
    )
    return found


async def demo_app(session: AsyncSession) -> DemoApp | None:
    client = await _demo_client(session)
    return _as_demo_app(client) if client is not None else None


async def demo_accounts(
    session: AsyncSession,
    secrets: AccountSecrets,
    *,
    seed: int = DEMO_SEED,
    sign_ins: int = DEMO_SIGN_INS,
) -> DemoAccounts:
    """The first `sign_ins` residents of city `seed` whose accounts exist, with the passwords
    the seed gave them, and the demo app (None when none is registered)."""
    residents = [make_resident(seed, index) for index in range(sign_ins)]
    indexes = {secrets.email_index(normalise_email(r.email)): r for r in residents}
    existing = set(
        await session.scalars(
            select(Account.email_index).where(
                Account.email_index.in_(list(indexes)), Account.kind == "resident"
            )
        )
    )
    listed = tuple(
        DemoSignIn(resident.email, resident.password)
        for index, resident in indexes.items()
        if index in existing
    )
    return DemoAccounts(listed, await demo_app(session))


async def ensure_demo_app(database: Database, redirect_uris: tuple[str, ...]) -> DemoApp:
    """The demo app, registered and activated if there is none, and holding `redirect_uris`
    besides the ones it has (a database seeded before a redirect was added gets it)."""
    async with database.unit_of_work() as session:
        registry = ClientRegistry(session)
        client = await _demo_client(session)
        if client is None:
            client = await registry.register(
                Registration(
                    kind=ClientKind.RESIDENT_APP,
                    name=DEMO_APP_NAME,
                    scopes=DEMO_APP_SCOPES,
                    redirect_uris=redirect_uris,
                )
            )
            await registry.set_status(client.client_id, ClientStatus.ACTIVE)
        else:
            client = await registry.add_redirect_uris(client.client_id, redirect_uris)
        return _as_demo_app(client)


def describe(accounts: DemoAccounts) -> list[str]:
    """The lines `bank demo accounts` and `bank serve --demo` print."""
    lines = ["demo residents (synthetic people; the passwords the seed set):"]
    lines += [f"  {s.email}  {s.password}" for s in accounts.sign_ins] or ["  (none)"]
    if accounts.app is None:
        lines.append("demo residents' app: none registered (`bank serve --demo` registers it)")
        return lines
    app = accounts.app
    lines += [
        "demo residents' app (authorization code + PKCE S256 at /oauth/authorize):",
        f"  client_id      {app.client_id}",
        f"  scope          {' '.join(app.scopes)}",
        f"  redirect_uris  {app.redirect_uris[0] if app.redirect_uris else '(none)'}",
        *(f"                 {uri}" for uri in app.redirect_uris[1:]),
    ]
    return lines
