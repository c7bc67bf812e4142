"""Composition root: the Litestar application and the job app, assembled from every package.

This module (with `bank.cli`) is the only place that imports all packages; the kernel never
imports `consent`, `points` or `anonymize`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

import procrastinate
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, OAuthFlow, OAuthFlows, SecurityScheme
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.static_files import create_static_files_router
from openapi_ui_bundles import swagger_ui

import bank
from bank import auth, identity, mypage, vault, welcome
from bank.audit import models as audit_models
from bank.audit.cli import register_commands as register_audit_commands
from bank.auth.cache import AuthCache, listening
from bank.auth.controllers import AUTHORIZE_PATH, TOKEN_PATH
from bank.auth.guards import BEARER_SCHEME, SECURITY_SCHEME, provide_principal
from bank.auth.jwks import JwksFetcher
from bank.auth.keys import SigningKeys
from bank.auth.passwords import configure_hashing
from bank.auth.principals import SCOPES
from bank.auth.tokens import VerifiedTokens
from bank.crypto.keyring import LocalKeyring
from bank.crypto.keystore import KeyStore, keystore_from_settings
from bank.db import Database
from bank.db.migrate import heads
from bank.demo.accounts import demo_app
from bank.health import HealthController, ProblemTypesController
from bank.http.context import make_before_send
from bank.http.input_guard import GuardedRequest, input_guard_middleware
from bank.http.media import media_type_middleware
from bank.http.openapi import OperationDocs
from bank.http.problems import exception_handlers
from bank.http.startup_gate import StartupGate, startup_gate_middleware
from bank.http.transaction import provide_db_session, transaction_middleware
from bank.identity.protect import AccountSecrets
from bank.jobs import assemble_job_app, kernel_tasks, opened
from bank.logs import configure_logging, get_logger
from bank.package import Package, check_unique, load_sections
from bank.settings import Settings, as_libpq, load_settings
from bank.vault.reapply import reapply_on_start
from bank.vault.resources import WorkerResources
from bank.welcome.docs import DEMO_CLIENT_STATE, SwaggerUI
from bank.workers import WorkerHealth, supervise

# The kernel's own contributions, under the namespace its jobs have always had (`bank:<task>`).
KERNEL: Package[KeyStore] = Package(
    name="bank",
    controllers=(HealthController,),
    commands=register_audit_commands,
    jobs=kernel_tasks,
    models=(audit_models,),
)

# Every package, lower layers first: routes, commands, jobs, models, erasure, export and the demo
# seed are assembled from this list in this order. A new package is one more line here.
PACKAGES: tuple[Package[KeyStore], ...] = (
    KERNEL,
    auth.PACKAGE,
    identity.PACKAGE,
    vault.PACKAGE,
    mypage.PACKAGE,
    welcome.PACKAGE,
)
check_unique(PACKAGES)


def job_app(packages: tuple[Package[KeyStore], ...]) -> procrastinate.App:
    """One job App with the packages' tasks, each namespaced `<package>:<task>`.

    procrastinate namespaces a blueprint's tasks in place, so a blueprint joins one App only: the
    process has one, `JOB_APP` (a test adding a package builds another from that package alone).
    """
    return assemble_job_app(
        {package.name: package.jobs for package in packages if package.jobs is not None}
    )


JOB_APP = job_app(PACKAGES)

log = get_logger("bank.app")

_DOCS_ASSETS = "/static/docs"


class _Metrics(PrometheusController):
    path = "/metrics"
    include_in_schema = False


def _openapi_config(settings: Settings) -> OpenAPIConfig:
    swagger = SwaggerUI(
        public_url=settings.public_url,
        path="/",
        # Served by us, not a CDN: the docs work offline and under a strict CSP.
        js_url=f"{_DOCS_ASSETS}/swagger-ui-bundle.js",
        css_url=f"{_DOCS_ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{_DOCS_ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{_DOCS_ASSETS}/favicon-32x32.png'>",
    )
    return OpenAPIConfig(
        title="City information bank API",
        version=bank.__version__,
        description=(
            "Personal data trust (情報銀行) for residents, data sources, partners and the city. "
            "Errors are RFC 9457 problem+json; see /problems for every code."
        ),
        path="/docs",
        render_plugins=[swagger],
        use_handler_docstrings=False,
        components=Components(
            security_schemes={
                SECURITY_SCHEME: _oauth2_scheme(),
                BEARER_SCHEME: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="An access token obtained elsewhere (the README's walk-through), "
                    "pasted as it is.",
                ),
            }
        ),
    )


def _oauth2_scheme() -> SecurityScheme:
    scopes = {
        scope: description
        for principal_scopes in SCOPES.values()
        for scope, description in principal_scopes.items()
    }
    return SecurityScheme(
        type="oauth2",
        description=(
            "JWT access tokens (RFC 9068, ES256). The residents' app and the operators' console "
            "use authorization_code with PKCE (S256); partners and data sources use "
            "client_credentials with private_key_jwt; each principal type has its own audience."
        ),
        flows=OAuthFlows(
            client_credentials=OAuthFlow(token_url=TOKEN_PATH, scopes=scopes),
            authorization_code=OAuthFlow(
                authorization_url=AUTHORIZE_PATH,
                token_url=TOKEN_PATH,
                refresh_url=TOKEN_PATH,
                scopes=scopes,
            ),
        ),
    )


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    packages: tuple[Package[KeyStore], ...] = PACKAGES,
) -> Litestar:
    """Build the web application from `packages` (every package unless a test adds its own).

    `database` lets tests hand in a session factory bound to their own transaction; otherwise the
    app opens (and on shutdown disposes) an engine for `settings.database_url`.
    """
    check_unique(packages)
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    configure_hashing(settings.password_hash_threads)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = database is None
        db = Database.connect(settings) if database is None else database
        app.state.database = db
        keyring = LocalKeyring.from_settings(settings)
        app.state.signing_keys = SigningKeys(keyring, db.sessions)
        app.state.keystore = keystore_from_settings(settings)
        # Residents' addresses and mail are sealed under their data keys (issue 12).
        app.state.account_secrets = AccountSecrets(keyring, app.state.keystore)
        app.state.jwks_fetcher = JwksFetcher()
        app.state.auth_cache = AuthCache()
        app.state.verified_tokens = VerifiedTokens()
        if settings.environment == "development":
            # Swagger UI's Authorize button fills in the demo app (bank.welcome.docs).
            async with db.sessions() as session:
                demo = await demo_app(session)
            app.state[DEMO_CLIENT_STATE] = demo.client_id if demo is not None else None
        # Erased residents a restored database brought back are erased again before anything
        # is served (the gate holds requests; /health/ready says `reapplying` meanwhile).
        gate = app.state.startup_gate = StartupGate()
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with db.sessions() as session:
                    await app.state.keystore.refuse_keys_left_behind(session)
                reapply = await reapply_on_start(db, app.state.keystore, packages, gate)
                if reapply is not None:
                    stack.push_async_callback(_cancelled, reapply)
                if settings.embedded_worker:
                    resources = WorkerResources(
                        settings, db, app.state.keystore, packages, app.state.sections
                    )
                    # Read by /health/ready: a worker being restarted makes the process unready.
                    app.state.job_worker = await stack.enter_async_context(
                        _embedded_worker(resources)
                    )
                if owned:
                    # Replicas drop cached token standing when a revocation commits anywhere.
                    dsn = as_libpq(settings.async_database_url())
                    await stack.enter_async_context(listening(app.state.auth_cache, dsn))
                    # Start-up objects (routes, schemas, models) live as long as the process;
                    # moving them out of the collector's view keeps full collections from
                    # walking them on every request burst (p99 of a 365-day push: ~150 -> ~40 ms).
                    gc.collect()
                    gc.freeze()
                log.info("app.started", environment=settings.environment)
                yield
        finally:
            await app.state.keystore.dispose()
            if owned:
                await db.dispose()
            log.info("app.stopped")

    return Litestar(
        route_handlers=[
            *(handler for package in packages for handler in package.controllers),
            ProblemTypesController,
            _Metrics,
            create_static_files_router(
                path=_DOCS_ASSETS, directories=[swagger_ui.static_path], include_in_schema=False
            ),
        ],
        lifespan=[lifespan],
        state=_initial_state(settings, packages),
        dependencies={
            "db_session": Provide(provide_db_session),
            "principal": Provide(provide_principal),
        },
        exception_handlers=exception_handlers(),
        middleware=[
            startup_gate_middleware,
            transaction_middleware,
            PrometheusConfig(
                app_name="bank", prefix="bank", group_path=True, exclude=[r"^/metrics$"]
            ).middleware,
            media_type_middleware,
            input_guard_middleware,
        ],
        request_class=GuardedRequest,
        before_send=[make_before_send(https=settings.public_url.startswith("https://"))],
        cors_config=CORSConfig(allow_origins=settings.cors_origins)
        if settings.cors_origins
        else None,
        openapi_config=_openapi_config(settings),
        plugins=[OperationDocs()],
        request_max_body_size=settings.max_body_bytes,
        # Logging is ours (bank.logs); Litestar's default config would install a second format.
        logging_config=None,
        debug=False,
    )


def _initial_state(settings: Settings, packages: tuple[Package[KeyStore], ...]) -> State:
    # `packages` is read by the erasure endpoint, which runs every package's erase hook;
    # `sections` holds each package's own settings, validated here at start-up.
    return State(
        {
            "settings": settings,
            "migration_heads": heads(),
            "keystore_heads": heads(keystore=True),
            "packages": packages,
            "sections": load_sections(packages),
        }
    )


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@contextlib.asynccontextmanager
async def _embedded_worker(resources: WorkerResources) -> AsyncIterator[WorkerHealth]:
    """A supervised job worker inside the web process (demo mode); production runs `bank worker`."""
    conninfo = as_libpq(resources.settings.async_database_url())
    health = WorkerHealth()
    async with opened(JOB_APP, conninfo) as jobs:
        worker = asyncio.create_task(
            supervise(
                jobs,
                name="embedded",
                concurrency=2,
                additional_context=resources.as_context(),
                health=health,
            )
        )
        try:
            yield health
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
